#!/usr/bin/env bash
# Runs the whole test suite offline (Pulumi mocks, the policy pack over its
# analyzer protocol, moto's server on loopback). Extra arguments go to pytest.
source "$(dirname "$0")/scripts/venv.sh"
exec python -m pytest "$@"
