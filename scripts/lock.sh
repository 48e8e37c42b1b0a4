#!/usr/bin/env bash
# Refreshes requirements.lock from requirements-local.txt (which includes the test, pack and
# program requirements), every package pinned with its hashes. Run after changing a
# requirements file, and commit the lock with it:
#     scripts/lock.sh             # keeps the pins that still fit, adds what is new
#     scripts/lock.sh --upgrade   # moves every pin to the newest version its range allows
# pip-compile resolves for the Python that runs it (3.11, as CI's); it runs in a throwaway
# virtual environment, so the project's .venv is untouched.
set -euo pipefail
project_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
"${PYTHON:-python3}" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "pip-tools>=7.6,<8"
cd "$project_dir"
"$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --output-file requirements.lock "$@" requirements-local.txt
echo "requirements.lock refreshed; commit it with the requirements files" >&2
