"""The archive's tables and named queries, declared once.

The Pulumi program builds the Glue tables and Athena named queries from this
module, and `python -m local.query` builds DuckDB views with the same names and
columns and runs the same SQL, so a query tried locally runs unchanged in
Athena. Pure: no Pulumi, no AWS, so the local tools import it cheaply.

The columns are what the processor writes (handler/processor.py
`_archive_line`, handler/quarantine.py `line`); tests/local/test_query.py
compares them with the lines of a real run, so a field added there fails the
test until it is declared here.

The archive is partitioned by the **arrival** hour of a batch's first record
(handler/processor.py), not by device time. The named query for a device-time
range therefore reads the partitions from `before` earlier to `after` later
than the range (see `partition_margins`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from handler import message_format as fmt
from handler.layout import QUARANTINE_PREFIX, RAW_PREFIX

# Where Athena writes query results, in the archive bucket (encrypted with the
# stack's key by the workgroup's enforced configuration).
ATHENA_RESULTS_PREFIX = "athena-results"
# The first day partition projection considers: no device clock reads earlier
# (message_format.MIN_TIMESTAMP_MS), so no reading arrives earlier either.
PROJECTION_START_DAY = "2020-01-01"

# Glue stores Hive types; the local views use the DuckDB type of the same values.
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "map<string,double>": "MAP(VARCHAR, DOUBLE)",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Hive type, as Glue stores it
    comment: str

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class ArchiveTable:
    """One prefix of the archive bucket as a table: gzip JSON lines under `<prefix>/dt=.../hour=.../`."""

    name: str
    prefix: str
    description: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


PARTITION_KEYS = (
    Column("dt", "string", "UTC day the batch's first record arrived in Kinesis, YYYY-MM-DD"),
    Column("hour", "string", "UTC hour the batch's first record arrived in Kinesis, 00-23"),
)

_TEXT = {"firmware": "device firmware version", "site": "plant or site", "line": "production line"}

READINGS = ArchiveTable(
    name="readings",
    prefix=RAW_PREFIX,
    description="Every valid reading, as the topic rule forwarded it plus where Kinesis put it",
    columns=(
        Column(fmt.FIELD_SCHEMA_VERSION, "int", "message format version"),
        Column(fmt.FIELD_DEVICE_ID, "string", "the device"),
        Column(fmt.FIELD_TIMESTAMP, "bigint", "device time of the reading, epoch milliseconds UTC"),
        Column(fmt.FIELD_READINGS, "map<string,double>", "sensor name to value"),
        *(Column(name, "bigint", "the device's message counter") for name in fmt.OPTIONAL_INTEGER_FIELDS),
        *(Column(name, "string", _TEXT.get(name, "optional text")) for name in fmt.OPTIONAL_TEXT_FIELDS),
        Column(fmt.FIELD_TOPIC_DEVICE_ID, "string", "device id from the MQTT topic (added by the topic rule)"),
        Column(fmt.FIELD_RECEIVED_AT, "bigint", "when IoT Core received the message, epoch milliseconds"),
        Column("kinesis_shard_id", "string", "Kinesis shard of the record"),
        Column("kinesis_sequence_number", "string", "Kinesis sequence number of the record"),
        Column("kinesis_arrival_ms", "bigint", "when the record arrived in Kinesis, epoch milliseconds"),
    ),
)

QUARANTINE = ArchiveTable(
    name="quarantine",
    prefix=QUARANTINE_PREFIX,
    description="Every record the processor could not use, with why, and its bytes",
    columns=(
        Column("reason", "string", "why it was quarantined (docs/message-format.md)"),
        Column("detail", "string", "what exactly was wrong"),
        Column("shard_id", "string", "Kinesis shard of the record"),
        Column("sequence_number", "string", "Kinesis sequence number of the record"),
        Column("arrival_ms", "bigint", "when the record arrived in Kinesis, epoch milliseconds"),
        Column("data_base64", "string", "the record's bytes, base64"),
    ),
)

TABLES = (READINGS, QUARANTINE)


def table_parameters(location: str) -> dict[str, str]:
    """Glue table parameters for gzip JSON lines under `location` (`s3://bucket/prefix`),
    partitioned by dt/hour through partition projection: Athena computes the
    partitions from these, so no crawler, no `MSCK REPAIR`, no partition API calls."""
    return {
        "EXTERNAL": "TRUE",
        "classification": "json",
        "compressionType": "gzip",
        # Objects the lifecycle moved to Glacier are skipped by Athena without an
        # error; this lets it read those restored for a query (README).
        "read_restored_glacier_objects": "true",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"{PROJECTION_START_DAY},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": f"{location}/dt=${{dt}}/hour=${{hour}}",
    }


def partition_margins(maximum_record_age_seconds: int, late_arrival_hours: int) -> tuple[int, int]:
    """How far the partitions read by a device-time query reach beyond the range: (minutes before, hours after).

    A reading's partition is the arrival hour of its batch's first record:
    - it is never *later* than the reading's own arrival, and a reading
      arrives at most `late_arrival_hours` after it was taken only if the
      device publishes promptly (a device that buffers while offline sends
      older readings; they are missed unless the margin covers them);
    - it is *earlier* than the reading's arrival by at most the batch's span,
      which the mapping bounds by `maximumRecordAgeSeconds` (older records are
      not delivered), and a reading arrives at most MAX_FUTURE_SKEW_MS before
      its device time (later timestamps are quarantined).
    """
    before_minutes = math.ceil((maximum_record_age_seconds * 1000 + fmt.MAX_FUTURE_SKEW_MS) / 60_000)
    return before_minutes, late_arrival_hours


@dataclass(frozen=True)
class NamedQuery:
    key: str  # short name, with the stack suffix in Athena
    description: str
    parameters: tuple[str, ...]  # in order: Athena's `?` parameters are positional
    sql: str


# A device-time bound as both engines read it: 'YYYY-MM-DD HH:MM:SS' in UTC.
_TIME = "CAST(? AS TIMESTAMP)"


def device_readings_query(maximum_record_age_seconds: int, late_arrival_hours: int) -> NamedQuery:
    """Readings of one device over a device-time range, pruned to the arrival partitions that can hold them."""
    before_minutes, after_hours = partition_margins(maximum_record_age_seconds, late_arrival_hours)
    sql = f"""-- Readings of one device over a device-time range (inclusive, UTC).
-- Parameters: device id, from, to, then from and to again for the partitions,
-- times as 'YYYY-MM-DD HH:MM:SS'. Partitions are by arrival hour: they are read
-- from {before_minutes} minutes before the range to {after_hours} hours after it.
-- A reading archived twice (docs/processor.md) is returned once.
SELECT device_id,
       "timestamp",
       from_unixtime("timestamp" / 1000e0) AS device_time,
       arbitrary(readings) AS readings,
       min(sequence) AS sequence,
       min(firmware) AS firmware,
       min(site) AS site,
       min(line) AS line,
       min(received_at) AS received_at
FROM {READINGS.name}
WHERE device_id = ?
  AND "timestamp" BETWEEN to_unixtime({_TIME}) * 1000 AND to_unixtime({_TIME}) * 1000
  AND concat(dt, '-', hour)
      BETWEEN date_format({_TIME} - INTERVAL '{before_minutes}' MINUTE, '%Y-%m-%d-%H')
          AND date_format({_TIME} + INTERVAL '{after_hours}' HOUR, '%Y-%m-%d-%H')
GROUP BY device_id, "timestamp"
ORDER BY "timestamp"
"""
    return NamedQuery(
        key="device-readings",
        description=(f"Readings of one device over a device-time range. Parameters: device id, from, to, from, to "
                     f"(UTC 'YYYY-MM-DD HH:MM:SS'). Reads arrival partitions from {before_minutes} min before to "
                     f"{after_hours} h after the range."),
        parameters=("device id", "from", "to", "from", "to"),
        sql=sql,
    )


def quarantine_by_reason_query() -> NamedQuery:
    sql = f"""-- Quarantined records by reason per day (the UTC day their batch arrived).
-- Parameters: first day, last day, as 'YYYY-MM-DD'.
SELECT dt AS arrival_day,
       reason,
       count(*) AS records
FROM {QUARANTINE.name}
WHERE dt BETWEEN ? AND ?
GROUP BY dt, reason
ORDER BY arrival_day, records DESC, reason
"""
    return NamedQuery(
        key="quarantine-by-reason",
        description="Quarantined records by reason per arrival day. Parameters: first day, last day ('YYYY-MM-DD').",
        parameters=("first day", "last day"),
        sql=sql,
    )
