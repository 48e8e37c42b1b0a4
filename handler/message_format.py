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

# Topic layout: factory/<stack suffix>/telemetry/<device_id>. Each stack has its
# own namespace (level 2), so two stacks in one account never select each other's
# devices. The device id is level 4, which the rule uses as the Kinesis partition
# key (one device, one shard, in order) and the device policy pins to the
# certificate's thing.
TOPIC_ROOT = "factory"
TOPIC_KIND = "telemetry"
DEVICE_ID_TOPIC_LEVEL = 4

# Device ids double as MQTT topic levels, IoT thing attributes and DynamoDB
# partition keys, and are part of thing names and MQTT client ids: keep to what
# all of them accept. `\Z`, not `$`: `$` also matches before a final newline.
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SENSOR_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
# A stack suffix is one topic level and the end of thing names: no "/", no MQTT
# wildcards, and no "_", which separates it from the device id in a thing name.
STACK_SUFFIX_PATTERN = re.compile(r"^[a-z0-9-]{1,63}\Z")
# Thing names and MQTT client ids: AWS IoT allows up to 128 of these characters.
THING_NAME_PATTERN = re.compile(r"^[A-Za-z0-9:_-]{1,128}\Z")
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
# IoT substitution template: the rule evaluates it per message. The same in every
# stack: the device id is level 4 of every stack's topics.
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


def _checked(kind: str, value: str, pattern: re.Pattern) -> str:
    if not (isinstance(value, str) and pattern.match(value)):
        raise ValueError(f"{kind} {value!r} must match {pattern.pattern}")
    return value


def topic_prefix(suffix: str) -> str:
    """The stack's telemetry namespace, `factory/<suffix>/telemetry`: a device id follows it."""
    return f"{TOPIC_ROOT}/{_checked('stack suffix', suffix, STACK_SUFFIX_PATTERN)}/{TOPIC_KIND}"


def telemetry_topic(suffix: str, device_id: str) -> str:
    """The topic a device of the stack with this suffix publishes its readings to."""
    return f"{topic_prefix(suffix)}/{_checked('device id', device_id, DEVICE_ID_PATTERN)}"


def topic_filter(suffix: str) -> str:
    """The rule's FROM filter: every device topic of this stack, and nothing of another stack's."""
    return f"{topic_prefix(suffix)}/+"


def rule_sql(suffix: str) -> str:
    """The stack's topic rule: the payload, plus the topic's device id and the receive time."""
    return (
        f"SELECT *, topic({DEVICE_ID_TOPIC_LEVEL}) AS {FIELD_TOPIC_DEVICE_ID}, "
        f"timestamp() AS {FIELD_RECEIVED_AT} FROM '{topic_filter(suffix)}'"
    )


def thing_name(suffix: str, device_id: str) -> str:
    """The device's IoT thing name, which is also its MQTT client id: `<device id>_<suffix>`.

    Thing names are unique per account and region, so each stack registers its
    own. The suffix holds no "_" and the device id may: the last "_" separates
    them, so no two (stack, device) pairs share a name. Messages keep the device's
    own id (`device_id`); only the registry and the connection see this name.
    """
    name = f"{_checked('device id', device_id, DEVICE_ID_PATTERN)}_{_checked('stack suffix', suffix, STACK_SUFFIX_PATTERN)}"
    return _checked("thing name", name, THING_NAME_PATTERN)


def topic_level(topic: str, level: int) -> str:
    """IoT SQL's topic(n): the n-th level, counted from 1; empty past the end."""
    parts = topic.split("/")
    return parts[level - 1] if 0 < level <= len(parts) else ""


def topic_matches_filter(topic: str, topic_filter: str) -> bool:
    """Whether an MQTT topic filter (`+` one level, `#` the rest) selects a topic, as IoT Core
    matches a rule's FROM clause. Nothing can be published to a name with wildcards."""
    if "+" in topic or "#" in topic:
        return False
    return filters_overlap(topic, topic_filter)


def filters_overlap(first: str, second: str) -> bool:
    """Whether some topic matches both MQTT topic filters (a topic is a filter without wildcards).

    `+` matches exactly one level, `#` (last) any number of levels including
    none, so `a/#` also matches `a`.
    """
    first_levels, second_levels = first.split("/"), second.split("/")
    for index in range(max(len(first_levels), len(second_levels))):
        mine = first_levels[index] if index < len(first_levels) else None
        theirs = second_levels[index] if index < len(second_levels) else None
        if mine == "#" or theirs == "#":
            return True
        if mine is None or theirs is None:
            return False
        if mine != theirs and "+" not in (mine, theirs):
            return False
    return True


def project(topic: str, payload: bytes, received_at_ms: int, *, suffix: str) -> tuple[bytes, str]:
    """What the stack's topic rule puts into Kinesis for one message: (data, partition key).

    Mirrors rule_sql(suffix) and KINESIS_PARTITION_KEY_TEMPLATE: the payload's JSON
    object with the device id from the topic and the receive time added. IoT Core
    can add fields only to JSON (or empty) payloads; anything else fails the rule
    and goes to its error action, which RuleRejected stands for here.
    """
    rule_filter = topic_filter(suffix)
    if not topic_matches_filter(topic, rule_filter):
        raise ValueError(f"topic {topic!r} is not matched by the rule filter {rule_filter!r}")
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
