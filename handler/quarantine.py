"""Which bad records to quarantine, so that each is kept exactly once. Pure.

Two things, kept per shard in a ledger item, stop a bad record from being kept
twice:

- the highest sequence number quarantined: a replayed batch, a bisected half
  or a retry from a reported record brings back records at or below it;
- fingerprints of recent bad *messages*: a bad message that still names a
  valid device id and timestamp has the identity a reading has
  (docs/message-format.md),
  so the same message delivered again under a new sequence number (a device
  re-publishing it, a duplicate put) is a duplicate, counted and not kept
  again. Its fingerprint hashes the message without the receive time the topic
  rule adds, which differs on every publish.

Bytes with no such identity (not JSON, not an object, no valid device id or
timestamp) are told apart by their sequence number only: two equal garbage
records are two records, and both are kept.
"""

from __future__ import annotations

import binascii
import json
from collections import namedtuple

from handler.message_format import (DEVICE_ID_PATTERN, FIELD_DEVICE_ID, FIELD_RECEIVED_AT, FIELD_TIMESTAMP,
                                    MIN_TIMESTAMP_MS)
from handler.records import LATEST_PLAUSIBLE_MS, Rejected

# How many fingerprints a shard's ledger keeps (17 bytes each in the item, far
# below DynamoDB's 400 KB): a bad message re-sent after this many newer
# distinct bad messages on its shard is quarantined again.
FINGERPRINTS_KEPT = 2_000

# What a shard's ledger holds: `fingerprints` oldest first; `arrival_ms` of the
# newest record quarantined, which the item's TTL counts from.
Ledger = namedtuple("Ledger", ["max_sequence", "fingerprints", "arrival_ms"])
EMPTY_LEDGER = Ledger(max_sequence=-1, fingerprints=(), arrival_ms=0)


def sequence_order(sequence_number: str) -> int:
    """A Kinesis sequence number as a number; -1 for one that is not (only hand-made events)."""
    # isdigit() alone also accepts digits int() refuses, such as "²".
    return int(sequence_number) if sequence_number.isascii() and sequence_number.isdigit() else -1


def fingerprint(rejected: Rejected) -> str | None:
    """The bad message's fingerprint, or None if it has no reading identity."""
    try:
        message = json.loads(rejected.raw) if rejected.raw[:1] == b"{" else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    device_id, timestamp = message.get(FIELD_DEVICE_ID), message.get(FIELD_TIMESTAMP)
    if not (type(device_id) is str and DEVICE_ID_PATTERN.match(device_id) and type(timestamp) is int
            and MIN_TIMESTAMP_MS <= timestamp < LATEST_PLAUSIBLE_MS):
        return None
    message.pop(FIELD_RECEIVED_AT, None)
    content = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    import hashlib  # only batches with bad records pay for loading it (OpenSSL), not every cold start

    return hashlib.sha256(content).hexdigest()[:16]


def select(rejected: list[Rejected], ledgers: dict[str, Ledger]) -> tuple[list[tuple[Rejected, str | None]], int, int]:
    """The records to quarantine now with their fingerprints, in sequence order;
    how many were replays (at or below their shard's ledger), and how many
    repeated a bad message already kept."""
    fresh: list[tuple[Rejected, str | None]] = []
    replayed = repeated = 0
    seen: dict[str, set[str]] = {}
    for record in sorted(rejected, key=lambda r: sequence_order(r.sequence_number)):
        ledger = ledgers.get(record.shard_id, EMPTY_LEDGER)
        order = sequence_order(record.sequence_number)
        if 0 <= order <= ledger.max_sequence:
            replayed += 1
            continue
        mark = fingerprint(record)
        shard_seen = seen.setdefault(record.shard_id, set(ledger.fingerprints))
        if mark is not None and mark in shard_seen:
            repeated += 1
            continue
        if mark is not None:
            shard_seen.add(mark)
        fresh.append((record, mark))
    return fresh, replayed, repeated


def advanced(ledgers: dict[str, Ledger], quarantined: list[tuple[Rejected, str | None]]) -> dict[str, Ledger]:
    """The ledgers of the shards that had records quarantined, once their object is stored."""
    updated: dict[str, Ledger] = {}
    for record, mark in quarantined:
        ledger = updated.get(record.shard_id) or ledgers.get(record.shard_id, EMPTY_LEDGER)
        marks = ledger.fingerprints + ((mark,) if mark is not None else ())
        updated[record.shard_id] = Ledger(max(ledger.max_sequence, sequence_order(record.sequence_number)),
                                          marks[-FINGERPRINTS_KEPT:], max(ledger.arrival_ms, record.arrival_ms))
    return updated


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
