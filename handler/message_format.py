"""The one definition of what devices publish, where, and what the topic rule forwards.

The Pulumi program builds the topic rule and the device policy from these names,
the processor validates records against them, and the local simulator and rule
bridge publish and project with them, so none of them can drift from the others.
Pure standard library: it ships inside the Lambda package.

See docs/message-format.md for the format as a document.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple

SCHEMA_VERSION = 1

# Topic layout: factory/telemetry/<device_id>. The device id is level 3, which
# the rule uses as the Kinesis partition key (one device, one shard, in order)
# and the device policy pins to the certificate's thing name.
TOPIC_PREFIX = "factory/telemetry"
DEVICE_ID_TOPIC_LEVEL = 3
TOPIC_FILTER = f"{TOPIC_PREFIX}/+"

# Device ids double as IoT thing names, MQTT client ids, topic levels and
# DynamoDB partition keys: keep to what all four accept.
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SENSOR_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_SENSORS_PER_READING = 32
MAX_RECORD_BYTES = 16 * 1024
MAX_OPTIONAL_TEXT_LENGTH = 64

# Device clocks are trusted within this skew; later timestamps are quarantined.
MAX_FUTURE_SKEW_MS = 5 * 60 * 1000
# 2020-01-01T00:00:00Z: a device whose clock reads earlier has not synced yet.
MIN_TIMESTAMP_MS = 1_577_836_800_000

# Fields a device publishes.
FIELD_SCHEMA_VERSION = "schema_version"
FIELD_DEVICE_ID = "device_id"
FIELD_TIMESTAMP = "timestamp"
FIELD_READINGS = "readings"
OPTIONAL_INTEGER_FIELDS = ("sequence",)
OPTIONAL_TEXT_FIELDS = ("firmware", "site", "line")

# Fields the topic rule adds to every record it forwards.
FIELD_TOPIC_DEVICE_ID = "topic_device_id"
FIELD_RECEIVED_AT = "received_at"

RULE_SQL_VERSION = "2016-03-23"
RULE_SQL = (
    f"SELECT *, topic({DEVICE_ID_TOPIC_LEVEL}) AS {FIELD_TOPIC_DEVICE_ID}, "
    f"timestamp() AS {FIELD_RECEIVED_AT} FROM '{TOPIC_FILTER}'"
)
# IoT substitution template: the rule evaluates it per message.
KINESIS_PARTITION_KEY_TEMPLATE = f"${{topic({DEVICE_ID_TOPIC_LEVEL})}}"


# A sensor type the fleet is known to carry, with its physical limits.
SensorSpec = namedtuple("SensorSpec", ["unit", "low", "high"])


# Default hard limits: a reading outside them is physically implausible for
# the sensor and is flagged as a `limit` anomaly. Stacks may override them.
KNOWN_SENSORS: dict[str, SensorSpec] = {
    "temperature": SensorSpec(unit="celsius", low=-40.0, high=150.0),
    "vibration": SensorSpec(unit="mm/s", low=0.0, high=50.0),
    "pressure": SensorSpec(unit="kPa", low=0.0, high=1000.0),
    "humidity": SensorSpec(unit="percent", low=0.0, high=100.0),
}


class RuleRejected(ValueError):
    """The rule engine cannot evaluate the message; IoT Core sends it to the error action."""


def telemetry_topic(device_id: str) -> str:
    """The topic a device publishes its readings to."""
    if not DEVICE_ID_PATTERN.match(device_id):
        raise ValueError(
            f"device id {device_id!r} must match {DEVICE_ID_PATTERN.pattern}"
        )
    return f"{TOPIC_PREFIX}/{device_id}"


def topic_level(topic: str, level: int) -> str:
    """IoT SQL's topic(n): the n-th level, counted from 1; empty past the end."""
    parts = topic.split("/")
    return parts[level - 1] if 0 < level <= len(parts) else ""


def topic_matches_filter(topic: str) -> bool:
    """Whether the rule's FROM clause selects a message published to this topic."""
    prefix_levels = TOPIC_PREFIX.split("/")
    levels = topic.split("/")
    return len(levels) == len(prefix_levels) + 1 and levels[:-1] == prefix_levels and levels[-1] != ""


def project(topic: str, payload: bytes, received_at_ms: int) -> tuple[bytes, str]:
    """What the topic rule puts into Kinesis for one message: (data, partition key).

    Mirrors RULE_SQL and KINESIS_PARTITION_KEY_TEMPLATE: the payload's JSON object
    with the device id from the topic and the receive time added. IoT Core can add
    fields only to JSON (or empty) payloads; anything else fails the rule and goes
    to its error action, which RuleRejected stands for here.
    """
    if not topic_matches_filter(topic):
        raise ValueError(f"topic {topic!r} is not matched by the rule filter {TOPIC_FILTER!r}")
    device_id = topic_level(topic, DEVICE_ID_TOPIC_LEVEL)
    try:
        message = json.loads(payload, parse_constant=_reject_non_json_constant) if payload.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RuleRejected) as error:
        raise RuleRejected(f"payload is not JSON: {error}") from error
    if not isinstance(message, dict):
        raise RuleRejected(f"payload is JSON {type(message).__name__}, not an object")
    message[FIELD_TOPIC_DEVICE_ID] = device_id
    message[FIELD_RECEIVED_AT] = received_at_ms
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return data, device_id


def _reject_non_json_constant(name: str) -> float:
    # Python's json accepts NaN and Infinity; IoT Core's JSON parser does not.
    raise RuleRejected(f"{name} is not valid JSON")


def build_message(
    device_id: str,
    timestamp_ms: int,
    readings: dict[str, float],
    **optional: object,
) -> dict:
    """A well-formed device message, as the simulator and examples publish it."""
    message = {
        FIELD_SCHEMA_VERSION: SCHEMA_VERSION,
        FIELD_DEVICE_ID: device_id,
        FIELD_TIMESTAMP: timestamp_ms,
        FIELD_READINGS: dict(readings),
    }
    unknown = set(optional) - set(OPTIONAL_INTEGER_FIELDS) - set(OPTIONAL_TEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown optional fields {sorted(unknown)}")
    message.update(optional)
    return message
