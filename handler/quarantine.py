"""What is kept of a bad record, and how a bad message is recognised when it comes again. Pure.

A bad message that still names a valid device id and timestamp has a
reading's identity (docs/message-format.md): its fingerprint, a hash of the
message without the receive time the topic rule adds (it differs on every
publish), is kept in its device's state, so the same message delivered again,
under any sequence number, is a duplicate. Bytes with no such identity (not
JSON, not an object, no valid device id or timestamp) are told apart by their
sequence number only (handler/items.py, the shard's ledger slots): two equal
garbage records are two records, and both are kept.
"""

from __future__ import annotations

import binascii
import json

from handler.message_format import (DEVICE_ID_PATTERN, FIELD_DEVICE_ID, FIELD_RECEIVED_AT, FIELD_TIMESTAMP,
                                    MIN_TIMESTAMP_MS)
from handler.records import LATEST_PLAUSIBLE_MS, Rejected

# How many fingerprints a device's state keeps (13 bytes each): a bad message
# re-sent after this many newer bad messages of its device is kept again.
FINGERPRINTS_KEPT = 128
CONFLICT = "conflict"


def sequence_order(sequence_number: str) -> int:
    """A Kinesis sequence number as a number; -1 for one that is not (only hand-made events)."""
    # isdigit() alone also accepts digits int() refuses, such as "²".
    return int(sequence_number) if sequence_number.isascii() and sequence_number.isdigit() else -1


def identity(raw: bytes) -> tuple[str, int, dict] | None:
    """(device id, timestamp, message) of a bad record that has a reading's identity, else None."""
    try:
        message = json.loads(raw) if raw[:1] == b"{" else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    device_id, timestamp = message.get(FIELD_DEVICE_ID), message.get(FIELD_TIMESTAMP)
    if not (type(device_id) is str and DEVICE_ID_PATTERN.fullmatch(device_id) and type(timestamp) is int
            and MIN_TIMESTAMP_MS <= timestamp < LATEST_PLAUSIBLE_MS):
        return None
    return device_id, timestamp, message


def fingerprint(message: dict) -> str:
    content = {name: value for name, value in message.items() if name != FIELD_RECEIVED_AT}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()
    import hashlib  # only batches with bad records pay for loading it (OpenSSL), not every cold start

    return hashlib.sha256(text).hexdigest()[:12]


def line(rejected: Rejected) -> str:
    """One line of a quarantine object: the raw bytes, why, and where they came from."""
    return json.dumps({
        "reason": rejected.reason,
        "detail": rejected.detail,
        "shard_id": rejected.shard_id,
        "sequence_number": rejected.sequence_number,
        "arrival_ms": rejected.arrival_ms,
        "data_base64": binascii.b2a_base64(rejected.raw, newline=False).decode(),
    }, separators=(",", ":"), sort_keys=True)
