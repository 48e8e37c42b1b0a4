"""Which bad records are quarantined: replays by sequence number, re-sent bad
messages by fingerprint, garbage never merged with other garbage."""

import json

from handler import items
from handler.quarantine import EMPTY_LEDGER, FINGERPRINTS_KEPT, Ledger, advanced, fingerprint, select
from handler.records import Rejected

SHARD = "shardId-000000000000"
NOW_MS = 1_795_081_600_000


def _rejected(sequence_number: int, raw: bytes, shard: str = SHARD) -> Rejected:
    return Rejected("readings", "detail", raw, shard, str(sequence_number), NOW_MS)


def _bad_message(timestamp: int = NOW_MS - 1000, received_at: int = NOW_MS) -> bytes:
    return json.dumps({"schema_version": 1, "device_id": "press-001", "timestamp": timestamp,
                       "readings": {"temperature": "hot"}, "received_at": received_at}).encode()


def test_fingerprint_ignores_the_receive_time_the_rule_stamps():
    assert fingerprint(_rejected(1, _bad_message(received_at=NOW_MS))) == \
        fingerprint(_rejected(2, _bad_message(received_at=NOW_MS + 999)))
    assert fingerprint(_rejected(1, _bad_message(timestamp=NOW_MS - 1))) != fingerprint(_rejected(1, _bad_message()))


def test_records_without_a_valid_identity_have_no_fingerprint():
    for raw in (b"", b"garbage", b"[1]", b'{"device_id": "bad/id", "timestamp": 1795081599000}',
                b'{"device_id": "press-001", "timestamp": "now"}', b'{"device_id": "press-001", "timestamp": 5}'):
        assert fingerprint(_rejected(1, raw)) is None, raw


def test_replays_at_or_below_the_ledger_are_skipped_and_repeats_are_counted():
    ledger = Ledger(max_sequence=10, fingerprints=(fingerprint(_rejected(0, _bad_message())),), arrival_ms=NOW_MS)
    batch = [_rejected(9, b"garbage"), _rejected(10, b"garbage"), _rejected(11, b"garbage"),
             _rejected(12, _bad_message(received_at=NOW_MS + 5)), _rejected(13, _bad_message(timestamp=NOW_MS - 7)),
             _rejected(14, _bad_message(timestamp=NOW_MS - 7))]
    fresh, replayed, repeated = select(batch, {SHARD: ledger})
    assert [r.sequence_number for r, _ in fresh] == ["11", "13"]
    assert (replayed, repeated) == (2, 2)


def test_the_ledger_advances_keeps_the_newest_fingerprints_and_round_trips_its_item():
    batch = [_rejected(100 + i, _bad_message(timestamp=NOW_MS - 10_000 + i)) for i in range(FINGERPRINTS_KEPT + 5)]
    fresh, _, _ = select(batch, {})
    ledger = advanced({SHARD: EMPTY_LEDGER}, fresh)[SHARD]
    assert ledger.max_sequence == 100 + FINGERPRINTS_KEPT + 4
    assert ledger.fingerprints == tuple(mark for _, mark in fresh[-FINGERPRINTS_KEPT:])
    item = items.ledger_item(SHARD, ledger, ttl_days=30)
    assert items.parse_ledger(item) == ledger
    assert int(item["expires_at"]["N"]) == NOW_MS // 1000 + 30 * 86_400
    assert len(json.dumps(item)) < 100_000, "the ledger stays far below DynamoDB's 400 KB item limit"


def test_shards_keep_separate_ledgers():
    fresh, _, _ = select([_rejected(5, b"x", shard="shardId-1"), _rejected(5, b"y", shard="shardId-2")],
                         {"shardId-1": Ledger(5, (), 0)})
    assert [(r.shard_id, r.sequence_number) for r, _ in fresh] == [("shardId-2", "5")]

