"""The archive the processor writes, exported as a local run keeps it and queried with DuckDB
through the Glue tables' declared columns, named queries included.

The real handler writes to moto's server over HTTP; local.archive exports the
bucket; local.query reads the exported files.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Iterator
from collections import Counter
from pathlib import Path

import pytest

from components import archive_tables
from components.archive_tables import QUARANTINE, READINGS
from local import query
from local.archive import export_archive
from tests.conftest import NOW_MS, BatchBuilder, LambdaContext

DEVICE = "press-001"
OTHER = "press-002"
START_MS = NOW_MS - 300_000  # 2026-11-19T09:41:40Z
FULL_MESSAGE_SEQUENCE = 7
# Taken 48 hours before it arrived (a device that buffered while offline).
LATE_MS = NOW_MS - 48 * 3_600_000


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


def _export_one_batch(stores, index, destination: Path) -> Path:
    """One batch through the real handler: two devices, a message with every optional field,
    a reading that arrives 48 hours late, and two bad records; then the bucket exported."""
    batch = BatchBuilder()
    for i in range(40):
        for device in (DEVICE, OTHER):
            batch.reading(device, START_MS + i * 1000, temperature=70.0 + i * 0.1, vibration=2.0)
    batch.message({"schema_version": 1, "device_id": DEVICE, "timestamp": START_MS + 40_000,
                   "readings": {"temperature": 71.5, "vibration": 2.5}, "sequence": FULL_MESSAGE_SEQUENCE,
                   "firmware": "2.4.1", "site": "plant-a", "line": "line-3"})
    batch.reading(DEVICE, LATE_MS, temperature=69.0)
    batch.raw(b"{not json", DEVICE)
    batch.message({"schema_version": 1, "device_id": DEVICE, "timestamp": START_MS, "readings": {"temperature": "hot"}})
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert export_archive(stores.s3, stores.pipeline.archive_bucket, destination) == len(stores.objects())
    return destination


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def archive(session_stores, index, tmp_path_factory) -> Iterator[Path]:
    """The exported batch, made once for the tests here that only query it: at the end of the
    module its files must be what the export wrote."""
    session_stores.clear()
    exported = _export_one_batch(session_stores, index, tmp_path_factory.mktemp("run") / "archive")
    written = _files(exported)
    yield exported
    assert _files(exported) == written, "a test changed the shared archive: give it own_archive instead"


@pytest.fixture
def own_archive(stores, index, tmp_path) -> Path:
    """The exported batch for one test, which may change it or compare it with the bucket."""
    return _export_one_batch(stores, index, tmp_path / "run" / "archive")


def _lines(archive: Path, prefix: str) -> list[dict]:
    return [json.loads(line) for path in sorted((archive / prefix).rglob("*.gz"))
            for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def test_export_keeps_every_object_under_its_key_byte_for_byte(own_archive, stores):
    bucket = stores.pipeline.archive_bucket
    keys = [o["Key"] for o in stores.s3.list_objects_v2(Bucket=bucket)["Contents"]]
    exported = sorted(str(p.relative_to(own_archive)) for p in own_archive.rglob("*") if p.is_file())
    assert exported == sorted(keys)
    for key in keys:
        assert (own_archive / key).read_bytes() == stores.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key
    assert not own_archive.with_name("archive.partial").exists()


def test_export_replaces_an_earlier_runs_archive(own_archive, stores):
    stale = own_archive / "raw" / "dt=2020-01-01" / "hour=00" / "old.ndjson.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    export_archive(stores.s3, stores.pipeline.archive_bucket, own_archive)
    assert not stale.exists()


def test_declared_columns_are_what_the_processor_writes(archive):
    raw = _lines(archive, READINGS.prefix)
    full = [line for line in raw if line.get("sequence") == FULL_MESSAGE_SEQUENCE]
    assert len(full) == 1
    assert sorted(full[0]) == sorted(READINGS.column_names), "declare new archive fields in components/archive_tables.py"
    assert all(set(line) <= set(READINGS.column_names) for line in raw)
    bad = _lines(archive, QUARANTINE.prefix)
    assert len(bad) == 2
    assert all(sorted(line) == sorted(QUARANTINE.column_names) for line in bad)


def test_objects_sit_where_the_projection_template_says(archive):
    # Every record arrived at NOW_MS: 2026-11-19, hour 09.
    for table in archive_tables.TABLES:
        template = archive_tables.table_parameters(f"s3://bucket/{table.prefix}")["storage.location.template"]
        folder = template.replace("${dt}", "2026-11-19").replace("${hour}", "09").removeprefix("s3://bucket/")
        files = [p for p in (archive / table.prefix).rglob("*") if p.is_file()]
        assert files and all(str(p.relative_to(archive).parent) == folder for p in files), (table.name, files)


def test_views_return_the_archived_values_with_the_declared_types(archive):
    columns, rows = query.run(f"SELECT * FROM readings WHERE sequence = {FULL_MESSAGE_SEQUENCE}", archive)
    line = next(line for line in _lines(archive, "raw") if line.get("sequence") == FULL_MESSAGE_SEQUENCE)
    assert columns == READINGS.column_names + ["dt", "hour"]
    assert dict(zip(columns, rows[0])) == {**line, "dt": "2026-11-19", "hour": "09"}
    columns, rows = query.run("SELECT * FROM quarantine ORDER BY sequence_number", archive)
    assert columns == QUARANTINE.column_names + ["dt", "hour"]
    assert [dict(zip(columns, row)) for row in rows] == [
        {**line, "dt": "2026-11-19", "hour": "09"}
        for line in sorted(_lines(archive, "quarantine"), key=lambda line: line["sequence_number"])]


def test_device_readings_query_returns_the_devices_readings_in_the_range(archive):
    named = archive_tables.device_readings_query(maximum_record_age_seconds=3600, late_arrival_hours=24)
    first, last = START_MS + 20_000, START_MS + 29_000
    columns, rows = query.run(named.sql, archive, [DEVICE, _iso(first), _iso(last), _iso(first), _iso(last)])
    assert columns[:2] == ["device_id", "timestamp"]
    assert [(row[0], row[1]) for row in rows] == [(DEVICE, START_MS + i * 1000) for i in range(20, 30)]
    readings = columns.index("readings")
    assert rows[0][readings] == {"temperature": pytest.approx(72.0), "vibration": 2.0}


def test_device_readings_query_finds_a_late_reading_only_within_its_margin(archive):
    window = [_iso(LATE_MS - 1000), _iso(LATE_MS + 1000)]
    params = [DEVICE, *window, *window]
    # It arrived 48 hours after it was taken: its partition is past a 24-hour margin.
    assert query.run(archive_tables.device_readings_query(3600, 24).sql, archive, params)[1] == []
    rows = query.run(archive_tables.device_readings_query(3600, 72).sql, archive, params)[1]
    assert [(row[0], row[1]) for row in rows] == [(DEVICE, LATE_MS)]


def test_quarantine_query_counts_by_reason_per_arrival_day(archive):
    expected = Counter(line["reason"] for line in _lines(archive, "quarantine"))
    columns, rows = query.run(archive_tables.quarantine_by_reason_query().sql, archive, ["2026-11-19", "2026-11-19"])
    assert columns == ["arrival_day", "reason", "records"]
    assert rows == sorted([("2026-11-19", reason, count) for reason, count in expected.items()],
                          key=lambda row: (row[0], -row[2], row[1]))
    assert len(expected) == 2
    assert query.run(archive_tables.quarantine_by_reason_query().sql, archive, ["2026-11-20", "2026-11-21"])[1] == []


def test_command_prints_a_table(archive, capsys):
    sql = "SELECT device_id, count(*) AS n FROM readings GROUP BY device_id ORDER BY device_id"
    assert query.main(["--archive", str(archive), sql]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "device_id  n", "---------  --", f"{DEVICE}  42", f"{OTHER}  40", "(2 rows)"]


def test_a_missing_archive_is_one_line_naming_the_folder_and_the_fix(tmp_path, capsys):
    assert query.main(["--archive", str(tmp_path / "nowhere"), "SELECT 1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(tmp_path / "nowhere") in error and "./run-local.sh" in error


def test_bad_sql_is_one_line(archive, capsys):
    assert query.main(["--archive", str(archive), "SELECT nope FROM readings"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: the query failed: ") and error.count("\n") == 1 and "nope" in error


def test_an_archive_without_quarantine_has_an_empty_quarantine_view(own_archive):
    for path in (own_archive / "quarantine").rglob("*.gz"):
        path.unlink()
    columns, rows = query.run("SELECT * FROM quarantine", own_archive)
    assert columns == QUARANTINE.column_names + ["dt", "hour"] and rows == []
