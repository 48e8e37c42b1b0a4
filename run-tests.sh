#!/usr/bin/env bash
# Runs everything CI checks, without a cloud: the linter (ruff, rules in pyproject.toml), then the
# whole test suite (Pulumi mocks, the policy pack over its analyzer protocol, moto's server on
# loopback). Extra arguments go to pytest: `./run-tests.sh -m "not e2e and not slow"` is the
# inner loop the README times (markers in pyproject.toml). The tests run even when lint fails,
# so one run shows both; the exit status is non-zero if either failed.
source "$(dirname "$0")/scripts/venv.sh"
lint=0
ruff check --quiet . || lint=$?
[ "$lint" -eq 0 ] || echo "ruff found the problems above (rules in pyproject.toml)" >&2
tests=0
python -m pytest "$@" || tests=$?
[ "$tests" -ne 0 ] && exit "$tests"
exit "$lint"
