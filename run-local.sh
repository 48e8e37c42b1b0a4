#!/usr/bin/env bash
# Runs the whole pipeline on this machine: MQTT broker, simulated fleet, rule
# bridge, moto's server and the real processor. Options: --help.
source "$(dirname "$0")/scripts/venv.sh"
exec python -m local.run "$@"
