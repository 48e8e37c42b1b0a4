"""Keep what a local run stored in S3 after moto's server stops.

Every current object of the archive bucket is written under
`<output folder>/archive/<its key>`: `raw/dt=.../hour=.../*.ndjson.gz`,
`quarantine/...` and the failed batches Lambda's on-failure destination keeps,
byte for byte. `python -m local.query` reads the `raw/` and `quarantine/`
folders as the Glue tables' locations.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.stack_config import PROJECT_DIR

ARCHIVE_DIR = "archive"
# Where ./run-local.sh writes by default (local/run.py --output); a run folder
# that keeps `latest` pointing at the newest run is followed.
DEFAULT_RUN_FOLDER = PROJECT_DIR / ".local-run"


def latest_archive() -> Path:
    """The archive folder of the latest local run with the default output folder."""
    latest = DEFAULT_RUN_FOLDER / "latest"
    return (latest if latest.is_dir() else DEFAULT_RUN_FOLDER) / ARCHIVE_DIR


def _target(root: Path, key: str) -> Path:
    target = (root / key).resolve()
    if not target.is_relative_to(root.resolve()) or key.endswith("/"):
        raise ValueError(f"object key {key!r} does not name a file under {root}")
    return target


def export_archive(s3, bucket: str, destination: Path) -> int:
    """Write every current object of `bucket` under `destination` (same keys); return how many.

    The previous folder goes first and the new one appears only once every
    object is written: an interrupted export leaves no folder, never a mix of
    two runs' objects.
    """
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(destination, ignore_errors=True)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for listed in page.get("Contents", []):
            target = _target(partial, listed["Key"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read())
            count += 1
    partial.rename(destination)
    return count
