#!/usr/bin/env bash
# Runs everything CI checks, without a cloud: the linter (ruff, rules in pyproject.toml), the
# type checker (mypy over components/, handler/ and policies/, settings in pyproject.toml), then
# the whole test suite (Pulumi mocks, the policy pack over its analyzer protocol, moto's server
# on loopback). Extra arguments go to pytest (`-m "not e2e and not slow" -n 2`: the README's
# inner loop, 615 tests in two worker processes, about 30 s on a quiet 2-core machine; the README
# gives the figures and the command they were measured with). The tests run even when lint or
# type checking fails, so one run shows all three; the exit status is non-zero if any of them
# failed.
source "$(dirname "$0")/scripts/venv.sh"
# Compiled modules are cached (in __pycache__, which git ignores) even where the environment sets
# PYTHONDONTWRITEBYTECODE: otherwise every run, each xdist worker and each Python the tests start
# compiles the project's modules and rewrites the tests' asserts again (about 3 s of CPU a run).
unset PYTHONDONTWRITEBYTECODE
lint=0
ruff check --quiet . || lint=$?
[ "$lint" -eq 0 ] || echo "ruff found the problems above (rules in pyproject.toml)" >&2
types=0
mypy || types=$?
[ "$types" -eq 0 ] || echo "mypy found the type errors above (settings in pyproject.toml)" >&2
tests=0
python -m pytest "$@" || tests=$?
for status in "$tests" "$lint" "$types"; do
  [ "$status" -eq 0 ] || exit "$status"
done
