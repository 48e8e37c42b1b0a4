"""Where the processor keeps things, shared by the program that creates the stores.

The DynamoDB key schema, the S3 prefixes and the environment variables that the
Pulumi program sets on the function are named here once: the program imports
this module to declare the table and the function's environment, the processor
to read and write. Changing a key attribute replaces the table on a real stack.

Table `sensor-metrics-<suffix>`, one partition per device:

    device_id (S, hash)  sk (S, range)                                   item
    press-001            2026-11-25T04:01:00.000Z#metrics                one-minute window aggregate
    press-001            2026-11-25T04:01:23.456Z#anomaly#temperature#spike   one anomaly
    press-001            state                                           detector state

Time-first sort keys in fixed-width UTC ISO 8601 sort chronologically, so one
Query (`device_id = :d AND sk BETWEEN :from AND :to`) returns a device's metrics
and anomalies over a time range in order; the state item sorts after every
timestamp and stays out of such ranges.
"""

from __future__ import annotations

TABLE_PARTITION_KEY = "device_id"
TABLE_SORT_KEY = "sk"
TABLE_TTL_ATTRIBUTE = "expires_at"

SORT_KEY_SEPARATOR = "#"
METRICS_SORT_KEY_SUFFIX = "metrics"
ANOMALY_SORT_KEY_TAG = "anomaly"
STATE_SORT_KEY = "state"

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
METRIC_DIMENSION_FUNCTION = "FunctionName"
METRIC_DIMENSION_ANOMALY_KIND = "AnomalyKind"
METRIC_RECORDS_IN = "RecordsIn"
METRIC_READINGS_STORED = "ReadingsStored"
METRIC_DUPLICATES = "DuplicatesSkipped"
METRIC_QUARANTINED = "RecordsQuarantined"
METRIC_ANOMALIES = "AnomaliesDetected"
METRIC_BATCH_LATENCY = "BatchLatency"
METRIC_BATCHES_FAILED = "BatchesReportedFailed"
