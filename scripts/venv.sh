# Sourced by the project's commands: make sure .venv exists and holds what
# requirements-local.txt (which includes the test and program requirements)
# asks for, reinstalling only when a requirements file changed.
set -euo pipefail
project_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$project_dir/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "Creating a virtual environment in .venv ..." >&2
  "$python" -m venv "$venv"
fi
requirements="$project_dir/requirements-local.txt"
[ -f "$requirements" ] || requirements="$project_dir/requirements-dev.txt"
stamp="$venv/.requirements.sha256"
digest="$(cat "$project_dir"/requirements*.txt "$project_dir"/policies/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing dependencies into .venv (first run takes a minute) ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  echo "$digest" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$project_dir"
