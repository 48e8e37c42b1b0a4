"""Where the processor keeps things, shared by the program that creates the stores.

The DynamoDB key schema, the S3 prefixes and the environment variables that the
Pulumi program sets on the function are named here once: the program imports
this module to declare the table and the function's environment, the processor
to read and write. Changing a key attribute replaces the table on a real stack.

Table `sensor-metrics-<suffix>`, one partition per device:

    device_id (S, hash)  sk (S, range)                                      item
    press-001            2026-11-25T04:01:00.000Z#metrics                   one-minute window aggregate
    press-001            2026-11-25T04:01:23.456Z#episode#temperature       one anomaly episode of a sensor
    press-001            2026-11-25T04:01:20.000Z#episode#device            one episode of the joint model
    press-001            state                                              detector state, open episodes
    _shard/<shard id>    quarantine#2026-11-25T04:01:20.000Z                quarantined records without identity

Time-first sort keys in fixed-width UTC ISO 8601 sort chronologically, so one
Query (`device_id = :d AND sk BETWEEN :from AND :to`) returns a device's
windows and episodes over a time range in order; the state item sorts after
every timestamp and stays out of such ranges.

An episode item (`item_type` = `episode`):

    attribute         type  meaning
    kind              S     what was seen first (a stronger kind replaces it while open: docs/processor.md)
    scope             S     the sensor, or `device` for the joint model
    sensors           SS    sensor names involved (joint model: those contributing most)
    started_at        N     epoch ms (device time) of the first abnormal reading
    ended_at          N     epoch ms of the last abnormal reading; absent while the episode is open
    last_abnormal_at  N     epoch ms of the latest abnormal reading so far
    peak_score        N     the largest score
    readings          N     the device's readings from started_at to the last abnormal one

No episode lasts longer than MAX_EPISODE_MS (a longer one is closed and a
continuation opened), so the episodes overlapping [from, to] are those with
sort keys from `from - MAX_EPISODE_MS` to `to` whose `ended_at` is absent or
at least `from`: one Query, no index.
"""

from __future__ import annotations

TABLE_PARTITION_KEY = "device_id"
TABLE_SORT_KEY = "sk"
TABLE_TTL_ATTRIBUTE = "expires_at"

SORT_KEY_SEPARATOR = "#"
METRICS_SORT_KEY_SUFFIX = "metrics"
EPISODE_SORT_KEY_TAG = "episode"
STATE_SORT_KEY = "state"
MAX_EPISODE_MS = 24 * 3_600_000

# S3 archive bucket layout (Hive-style partitions Athena reads).
RAW_PREFIX = "raw"
QUARANTINE_PREFIX = "quarantine"
# Lambda's own on-failure destination layout; it cannot be moved under a prefix.
LAMBDA_FAILURE_PREFIX = "aws/lambda"

# Environment variables the program sets on the function.
ENV_METRICS_TABLE = "METRICS_TABLE_NAME"
ENV_ARCHIVE_BUCKET = "ARCHIVE_BUCKET_NAME"
ENV_METRICS_TTL_DAYS = "METRICS_TTL_DAYS"
ENV_SENSOR_LIMITS = "SENSOR_LIMITS_JSON"
ENV_ANOMALY_SETTINGS = "ANOMALY_SETTINGS_JSON"
ENV_METRICS_NAMESPACE = "METRICS_NAMESPACE"

# CloudWatch metrics the processor emits (embedded metric format) and the
# alarms and dashboard read: one definition for both sides.
# The namespace the program sets on the function (ENV_METRICS_NAMESPACE) and the
# alarms and dashboard read.
METRICS_NAMESPACE = "IotSensorPipeline"
# The episode kinds the detector reports (handler/detection.py), one dashboard line
# and one metric dimension value each.
ANOMALY_KINDS = ("limit", "spike", "level_shift", "variance", "drift", "stuck", "multivariate")

METRIC_DIMENSION_FUNCTION = "FunctionName"
METRIC_DIMENSION_ANOMALY_KIND = "AnomalyKind"
METRIC_RECORDS_IN = "RecordsIn"
METRIC_READINGS_STORED = "ReadingsStored"
METRIC_DUPLICATES = "DuplicatesSkipped"
METRIC_QUARANTINED = "RecordsQuarantined"
METRIC_ANOMALIES = "AnomaliesDetected"  # episodes opened
METRIC_CONFLICTS = "ReadingConflicts"
METRIC_LATE = "LateReadings"
METRIC_BATCH_LATENCY = "BatchLatency"
METRIC_BATCHES_FAILED = "BatchesReportedFailed"
