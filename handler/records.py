"""Turn Kinesis records into readings, or into rejections that say why.

Pure: no AWS, no environment. Every input, whatever its bytes, becomes exactly
one Reading or one Rejected; nothing here raises for bad data. A message with
one invalid value is rejected whole (see docs/message-format.md).
"""

from __future__ import annotations

import binascii
import json
import operator
import struct
import zlib
from collections import namedtuple
from collections.abc import Callable

from handler import message_format as fmt

# The largest magnitude stored: physically meaningless beyond, and DynamoDB
# numbers must stay within 38 significant digits and 1E-130..1E+125.
MAX_READING_MAGNITUDE = 1e12
# Kinesis's largest record: a bad record is kept whole up to this size.
MAX_KINESIS_RECORD_BYTES = 1024 * 1024
# Larger records are too large whatever the rule added: not even decoded.
_DECODED_AT_MOST = fmt.MAX_RECORD_BYTES + 1024
# The fields the topic rule appends to a device's payload; the size limit is on what the device sent, so
# their bytes in the record (`,"topic_device_id":"<id>","received_at":<ms>`) are measured per record.
_RULE_FIELDS = (fmt.FIELD_TOPIC_DEVICE_ID, fmt.FIELD_RECEIVED_AT)

# 2100-01-01T00:00:00Z: any later time (a device timestamp, or a receive or
# arrival time in a hand-made record) is not a clock reading, and would not fit
# the fixed-width ISO sort keys and date partitions.
LATEST_PLAUSIBLE_MS = 4_102_444_800_000

_OPTIONAL_FIELDS = frozenset(fmt.OPTIONAL_TEXT_FIELDS + fmt.OPTIONAL_INTEGER_FIELDS)


# One valid device message: one device, one timestamp, its sensor values.
Reading = namedtuple("Reading", ["device_id", "timestamp_ms", "values", "message", "shard_id", "sequence_number",
                                 "arrival_ms", "raw"])
# A record that cannot be processed, kept with its raw bytes and the reason.
Rejected = namedtuple("Rejected", ["reason", "detail", "raw", "shard_id", "sequence_number", "arrival_ms"])
_new_tuple = tuple.__new__


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every record: json.loads would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# What raw_decode calls, without its two Python frames per record (JSONDecoder sets it; typeshed omits it).
_scan_json: Callable[[str, int], tuple[object, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
# Names already validated: a fleet repeats the same few thousand device ids and
# a handful of sensor names, so each pattern runs once per name per container.
_KNOWN_DEVICE_IDS: set[str] = set()
_KNOWN_SENSOR_NAMES: set[str] = set()
_KNOWN_NAMES_LIMIT = 100_000


def _decode_json(text: str) -> object:
    """JSON.decode without its two whitespace scans: the rule forwards compact JSON."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return _DECODER.decode(text)  # leading whitespace, or invalid: the full decoder says which
    if end != len(text) and text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


def parse_record(record: dict) -> Reading | Rejected:
    """Decode and validate one record of a Kinesis event."""
    kinesis = record.get("kinesis") if isinstance(record, dict) else None
    if not isinstance(kinesis, dict):
        return Rejected("malformed_event", "record has no kinesis object", b"", "unknown-shard", "", 0)
    sequence_number = kinesis.get("sequenceNumber", "")
    if type(sequence_number) is not str:
        sequence_number = str(sequence_number)
    event_id = record.get("eventID")  # `<shard id>:<sequence number>`
    shard_id, separator, _ = event_id.partition(":") if isinstance(event_id, str) else ("", "", "")
    if not separator:
        shard_id = "unknown-shard"
    arrival = kinesis.get("approximateArrivalTimestamp")
    arrival_ms = 0
    if type(arrival) is float or type(arrival) is int:
        arrival_scaled = arrival * 1000
        if 0 <= arrival_scaled < LATEST_PLAUSIBLE_MS:
            arrival_ms = round(arrival_scaled)
    data = kinesis.get("data")
    if not isinstance(data, str):
        return Rejected("malformed_event", "kinesis.data is not a base64 string", b"", shard_id, sequence_number,
                        arrival_ms)
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as error:
        return Rejected("not_base64", str(error), data.encode("utf-8", "replace")[:MAX_KINESIS_RECORD_BYTES], shard_id,
                        sequence_number, arrival_ms)
    raw = raw[:MAX_KINESIS_RECORD_BYTES]  # Kinesis's own limit: only a hand-made event holds more
    # The format's limit is on what the device sent: the rule's fields come on top
    # (exactly measured below; this first check only spares decoding a huge record).
    if len(raw) > _DECODED_AT_MOST:
        return Rejected("too_large", f"{len(raw)} bytes, a device may send at most {fmt.MAX_RECORD_BYTES}", raw,
                        shard_id, sequence_number, arrival_ms)
    try:
        text = raw.decode("utf-8")
        try:
            # The C scanner alone: a compact object that ends the record is the rule's every record.
            message, end = _scan_json(text, 0)
        except (StopIteration, ValueError):
            end = -1
        if end != len(text):
            message = _decode_json(text)  # whitespace, trailing data, invalid: the decoder's own result and words
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        return Rejected("not_json", str(error)[:200], raw, shard_id, sequence_number, arrival_ms)
    if type(message) is not dict:
        return Rejected("not_object", f"JSON {type(message).__name__}, not an object", raw, shard_id,
                        sequence_number, arrival_ms)
    if len(raw) > fmt.MAX_RECORD_BYTES and len(raw) - _rule_fields_size(message) > fmt.MAX_RECORD_BYTES:
        return Rejected("too_large", f"{len(raw) - _rule_fields_size(message)} bytes from the device, at most "
                        f"{fmt.MAX_RECORD_BYTES}", raw, shard_id, sequence_number, arrival_ms)
    problem = _validate(message, arrival_ms)
    if problem is not None:
        return Rejected(problem[0], problem[1], raw, shard_id, sequence_number, arrival_ms)
    # tuple.__new__: a Reading without the Python frame of the namedtuple's own __new__ (once per record).
    return _new_tuple(Reading, (message[fmt.FIELD_DEVICE_ID], message[fmt.FIELD_TIMESTAMP],
                                message[fmt.FIELD_READINGS], message, shard_id, sequence_number, arrival_ms, raw))


def _rule_fields_size(message: dict) -> int:
    """The bytes the rule's fields take in the record, serialised as the rule's compact JSON does."""
    return sum(len(f',"{name}":') + len(json.dumps(message[name], separators=(",", ":")))
               for name in _RULE_FIELDS if name in message)


# The fields every reading has: identity, version, values and what the rule adds. Anything else
# a device sends (optional fields) is content too.
_COMMON_FIELDS = frozenset((fmt.FIELD_SCHEMA_VERSION, fmt.FIELD_DEVICE_ID, fmt.FIELD_TIMESTAMP, fmt.FIELD_READINGS,
                            fmt.FIELD_RECEIVED_AT, fmt.FIELD_TOPIC_DEVICE_ID))
# How to digest readings whose sensors arrive in a given order (a fleet sends a few orders): the packing
# of as many floats, the values in name order (None: the order is name order), the CRC of the names.
# Built once per order per container.
_DigestLayout = tuple[Callable[..., bytes], Callable[[dict], tuple] | None, int]
_DIGEST_LAYOUTS: dict[tuple[str, ...], _DigestLayout] = {}
_COMMON_FIELD_COUNT = len(_COMMON_FIELDS)


def _digest_layout(order: tuple[str, ...]) -> _DigestLayout:
    if len(_DIGEST_LAYOUTS) >= _KNOWN_NAMES_LIMIT:
        _DIGEST_LAYOUTS.clear()
    names = tuple(sorted(order))
    # itemgetter of two names or more gives a tuple; an order of one name is name order.
    in_name_order = None if names == order else operator.itemgetter(*names)
    layout = _DIGEST_LAYOUTS[order] = (struct.Struct(f"<{len(names)}d").pack, in_name_order,
                                       zlib.crc32("\0".join(names).encode()))
    return layout


def content_digest(message: dict) -> int:
    """16 bits of the reading as the device sent it, without the rule's receive time: its values by
    sensor name in name order (as 8-byte floats, so 1 and 1.0 are one value), and any optional field.

    Part of the stored format: window items keep these digests, so a change here makes every
    reading already stored look like a conflict when it is delivered again.
    """
    readings = message[fmt.FIELD_READINGS]
    order = tuple(readings)
    pack, in_name_order, names_crc = _DIGEST_LAYOUTS.get(order) or _digest_layout(order)
    crc = zlib.crc32(pack(*(readings.values() if in_name_order is None else in_name_order(readings))), names_crc)
    if len(message) > _COMMON_FIELD_COUNT or not _COMMON_FIELDS.issuperset(message):
        extra = sorted((name, repr(value)) for name, value in message.items() if name not in _COMMON_FIELDS)
        crc = zlib.crc32(repr(extra).encode(), crc)
    return crc & 0xFFFF


def _is_int(value: object) -> bool:
    return type(value) is int


def _validate(message: dict, arrival_ms: int) -> tuple[str, str] | None:
    """The first problem with a decoded message as (reason, detail), or None."""
    # `type(x) is int`, not isinstance: True is not a version, a timestamp or a count. Inline: once per record.
    version = message.get(fmt.FIELD_SCHEMA_VERSION)
    if version != fmt.SCHEMA_VERSION or type(version) is not int:
        return "schema_version", f"{fmt.FIELD_SCHEMA_VERSION} is {_short(version)}, expected {fmt.SCHEMA_VERSION}"
    device_id = message.get(fmt.FIELD_DEVICE_ID)
    # Type first: a JSON list or object is unhashable and cannot meet the set.
    if type(device_id) is not str or device_id not in _KNOWN_DEVICE_IDS:
        if type(device_id) is not str or not fmt.DEVICE_ID_PATTERN.fullmatch(device_id):
            return "device_id", f"{fmt.FIELD_DEVICE_ID} is {_short(device_id)}, expected {fmt.DEVICE_ID_PATTERN.pattern}"
        _remember(_KNOWN_DEVICE_IDS, device_id)
    topic_device_id = message.get(fmt.FIELD_TOPIC_DEVICE_ID, device_id)
    if topic_device_id != device_id:
        return "device_mismatch", f"published to the topic of {_short(topic_device_id)} as {device_id!r}"
    timestamp = message.get(fmt.FIELD_TIMESTAMP)
    if type(timestamp) is not int:
        return "timestamp", f"{fmt.FIELD_TIMESTAMP} is {_short(timestamp)}, expected epoch milliseconds (integer)"
    # Judged against when IoT Core received the message, so a replay judges it the same.
    received_at = message.get(fmt.FIELD_RECEIVED_AT)
    reference_ms = received_at if type(received_at) is int and 0 < received_at < LATEST_PLAUSIBLE_MS else arrival_ms
    if timestamp < fmt.MIN_TIMESTAMP_MS:
        return "timestamp", f"{fmt.FIELD_TIMESTAMP} {timestamp} is before 2020-01-01: device clock not set"
    if timestamp > (reference_ms + fmt.MAX_FUTURE_SKEW_MS if reference_ms else LATEST_PLAUSIBLE_MS):
        return "timestamp", (f"{fmt.FIELD_TIMESTAMP} {_short(timestamp)} is more than 5 minutes after receipt "
                             f"({reference_ms or 'unknown'})")
    readings = message.get(fmt.FIELD_READINGS)
    if not isinstance(readings, dict) or not readings:
        return "readings", f"{fmt.FIELD_READINGS} must be a non-empty object of sensor name to number"
    if len(readings) > fmt.MAX_SENSORS_PER_READING:
        return "readings", f"{len(readings)} sensors, at most {fmt.MAX_SENSORS_PER_READING}"
    for name, value in readings.items():
        if name not in _KNOWN_SENSOR_NAMES:
            if not fmt.SENSOR_NAME_PATTERN.fullmatch(name):
                return "readings", f"sensor name {_short(name)} must match {fmt.SENSOR_NAME_PATTERN.pattern}"
            _remember(_KNOWN_SENSOR_NAMES, name)
        value_type = type(value)
        if (value_type is not float and value_type is not int) or not -MAX_READING_MAGNITUDE <= value <= MAX_READING_MAGNITUDE:
            return "reading_value", f"{name} is {_short(value)}, expected a finite number within ±{MAX_READING_MAGNITUDE:g}"
    if not _OPTIONAL_FIELDS.isdisjoint(message):
        return _validate_optional(message)
    return None


def _validate_optional(message: dict) -> tuple[str, str] | None:
    # In the format's order, not a set's: a set of strings iterates in an order that changes with the
    # process's hash seed, and the first problem found is the detail stored with the quarantined record.
    for name in fmt.OPTIONAL_INTEGER_FIELDS:
        if name in message and (not _is_int(message[name]) or message[name] < 0):
            return "optional_field", f"{name} is {_short(message[name])}, expected a non-negative integer"
    for name in fmt.OPTIONAL_TEXT_FIELDS:
        if name in message and (not isinstance(message[name], str) or len(message[name]) > fmt.MAX_OPTIONAL_TEXT_LENGTH):
            return "optional_field", f"{name} must be text of at most {fmt.MAX_OPTIONAL_TEXT_LENGTH} characters"
    return None


def _short(value: object) -> str:
    # Details go into the quarantine line; the raw bytes are there in full.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _remember(known: set[str], name: str) -> None:
    if len(known) >= _KNOWN_NAMES_LIMIT:
        known.clear()
    known.add(name)
