#!/usr/bin/env bash
# Backtests the detector on CSV exports of a plant's history: episodes, a summary and plots. Options: --help.
# File paths are the caller's: run from where it was started, with the project importable.
here="$PWD"
source "$(dirname "$0")/scripts/venv.sh"
cd "$here" && PYTHONPATH="$project_dir${PYTHONPATH:+:$PYTHONPATH}" exec python -m local.backtest "$@"
