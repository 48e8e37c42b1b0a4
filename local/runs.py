"""Where a local run writes: a fresh folder per run, and `latest` pointing at the newest.

    .local-run/
      runs/20261201T221500Z/   summary.json, readings.png, table.jsonl, archive/, logs
      latest -> runs/20261201T221500Z

`latest` moves to the new folder when the run starts, so a run that fails or
is interrupted leaves `latest` on its own (incomplete) folder, never on files
an earlier run left behind; `python -m local.inspect` and `python -m
local.query` read `latest` by default. The newest KEEP_RUNS runs are kept.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from harness.stack_config import PROJECT_DIR

LATEST = "latest"
RUNS_DIR = "runs"
SNAPSHOT_FILE = "table.jsonl"
KEEP_RUNS = 5


def default_output() -> Path:
    return PROJECT_DIR / ".local-run"


def new_run_folder(output: Path) -> Path:
    """Create `<output>/runs/<UTC time>/`, point `<output>/latest` at it, drop the oldest runs."""
    runs = output / RUNS_DIR
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, n = runs / stamp, 1
    while folder.exists():  # two runs within a second
        n += 1
        folder = runs / f"{stamp}-{n}"
    folder.mkdir()
    latest = output / LATEST
    if latest.exists() and not latest.is_symlink():
        raise SystemExit(f"{latest} is not a link to a run folder: move it away, or pass another --output")
    # A new link renamed over the old one: `latest` always names a whole folder.
    pending = output / f".{LATEST}.{os.getpid()}"
    pending.unlink(missing_ok=True)
    pending.symlink_to(folder.relative_to(output))
    os.replace(pending, latest)
    # The new folder is never a candidate: its name may sort before older runs' (a reused name).
    older = sorted(p for p in runs.iterdir() if p.is_dir() and p != folder)
    for old in older[:max(0, len(older) - (KEEP_RUNS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return folder
