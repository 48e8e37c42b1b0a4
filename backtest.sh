#!/usr/bin/env bash
# Backtests the detector on CSV exports of a plant's history: episodes, a summary and plots. Options: --help.
source "$(dirname "$0")/scripts/venv.sh"
exec python -m local.backtest "$@"
