# Sourced by the project's commands: make sure .venv exists and holds exactly what
# requirements.lock pins (the program, the policy pack, the tests, the local run and the
# linter, with hashes), reinstalling only when the lock changed. `pulumi up` reads
# requirements.txt itself; scripts/lock.sh refreshes the lock from the requirements files.
set -euo pipefail
project_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$project_dir/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "Creating a virtual environment in .venv ..." >&2
  "$python" -m venv "$venv"
fi
lock="$project_dir/requirements.lock"
stamp="$venv/.requirements.sha256"
digest="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing the locked dependencies into .venv (first run takes a few minutes) ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" >&2
  echo "$digest" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$project_dir"
