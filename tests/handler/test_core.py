"""The pure planner (handler/core.py) on plain data, with the table held in memory as
`run_in_memory` keeps it: identity, conflicts, bounded windows, exact sums, quarantine once,
and results that do not depend on how a device's readings were split into batches."""

import base64
import json
import random

import pytest

from handler import items
from handler.aggregation import MAX_APPLIED_BYTES, WINDOW_MS, Window, decode_applied, encode_applied, exact_sum
from handler.core import Planner, run_in_memory
from handler.detection import Detector
from handler.detector_settings import DetectorSettings
from handler.message_format import KNOWN_SENSORS, build_message
from handler.quarantine import fingerprint, identity

SHARD = "shardId-000000000000"
NOW_MS = 1_795_081_600_000
LIMITS = {name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()}


def _planner() -> Planner:
    return Planner(Detector(LIMITS, DetectorSettings()), ttl_days=30)


def _record(data: bytes, sequence: int, arrival_ms: int = NOW_MS, shard: str = SHARD) -> dict:
    return {"eventID": f"{shard}:{sequence}",
            "kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": str(sequence),
                        "approximateArrivalTimestamp": arrival_ms / 1000}}


def _reading(sequence: int, device: str, timestamp: int, received_at: int = NOW_MS, **values) -> dict:
    message = {**build_message(device, timestamp, values), "topic_device_id": device, "received_at": received_at}
    return _record(json.dumps(message).encode(), sequence)


def _bad_message(timestamp: int = NOW_MS - 1000, received_at: int = NOW_MS) -> dict:
    return {"schema_version": 1, "device_id": "press-001", "timestamp": timestamp,
            "readings": {"temperature": "hot"}, "received_at": received_at, "topic_device_id": "press-001"}


def _quarantined(plans) -> list[tuple[str, str]]:
    return [(r.reason, r.sequence_number) for plan in plans for r in plan.quarantined]


def test_fingerprint_ignores_the_receive_time_the_rule_stamps():
    assert fingerprint(_bad_message(received_at=NOW_MS)) == fingerprint(_bad_message(received_at=NOW_MS + 999))
    assert fingerprint(_bad_message(timestamp=NOW_MS - 1)) != fingerprint(_bad_message())


def test_records_without_a_valid_identity_have_none():
    for raw in (b"", b"garbage", b"[1]", b'{"device_id": "bad/id", "timestamp": 1795081599000}',
                b'{"device_id": "press-001\\n", "timestamp": 1795081599000}',
                b'{"device_id": "press-001", "timestamp": "now"}', b'{"device_id": "press-001", "timestamp": 5}'):
        assert identity(raw) is None, raw


def test_applied_record_round_trips_sparse_and_dense_and_stays_bounded():
    rng = random.Random(3)
    for count in (0, 1, 59, WINDOW_MS // 16 - 1, WINDOW_MS // 16, 30_000, WINDOW_MS):
        applied = {offset: rng.randrange(65_536) for offset in rng.sample(range(WINDOW_MS), count)}
        encoded = encode_applied(applied)
        assert decode_applied(encoded) == applied, count
        assert len(encoded) <= MAX_APPLIED_BYTES
    assert MAX_APPLIED_BYTES == 127_501


def test_a_full_minute_at_one_reading_per_millisecond_with_32_sensors_fits_one_item():
    window = Window(start_ms=NOW_MS - NOW_MS % WINDOW_MS)
    values = {f"sensor_{i:02d}": 1234.5678 + i for i in range(32)}
    for offset in range(WINDOW_MS):
        window.add(window.start_ms + offset, offset % 65_536, values)
    size = items.item_size(items.window_write("press-001", window, 30).item)
    assert size < 135_000, f"{size} bytes: the documented bound is about 134 KB, DynamoDB's limit 400 KB"


def test_window_sums_are_exact_whatever_the_order():
    readings = list(enumerate([0.1, 1e16, -1e16, 0.2, 3.3, 1e-300, 7.25] * 20))  # (offset, value)
    orders = [readings, list(reversed(readings)), sorted(readings, key=lambda pair: pair[1])]
    stored = []
    for order in orders:
        window = Window(start_ms=0)
        for offset, value in order:
            window.add(offset, 0, {"x": value})
        stored.append(items.window_write("d", window, 30).item["sensors"])
    assert stored[0] == stored[1] == stored[2]


def test_exact_sum_is_the_sum_of_every_values_exact_multiple_of_the_smallest_float():
    def one_by_one(values):
        return sum(numerator << (1075 - denominator.bit_length())
                   for numerator, denominator in map(float.as_integer_ratio, map(float, values)))

    rng = random.Random(7)
    cases = [[0.1, 1e16, -1e16, 0.2, 1e-300, 5e-324, -0.0], [1e12, -1e12, 1e-12], [3, -7, 2.5], [0.0], []]
    cases += [[round(rng.gauss(50, 10), rng.randrange(6)) for _ in range(rng.randrange(1, 200))] for _ in range(200)]
    cases += [[rng.uniform(-1, 1) * 2.0 ** rng.randrange(-1074, 40) for _ in range(rng.randrange(1, 50))]
              for _ in range(200)]
    for values in cases:
        assert exact_sum(values) == one_by_one(values), values


def _stored_sensors(batches: list[list[tuple[int, dict]]]) -> dict:
    """The sensors of a window item after adding readings (offset, values), the statistics read after each batch."""
    window = Window(start_ms=0)
    for batch in batches:
        for offset, values in batch:
            window.add(offset, 0, values)
        window.sensors  # noqa: B018 (reading them takes the batch in)
    return items.window_write("d", window, 30).item["sensors"]["M"]


def test_window_statistics_do_not_depend_on_when_they_are_read_or_on_which_sensors_a_reading_names():
    rng = random.Random(5)
    readings = [(offset, {"a": round(rng.uniform(-5, 5), 2), "b": rng.choice([1, 1.0, -0.0, 0.0, 2, 2.0])})
                for offset in rng.sample(range(WINDOW_MS), 300)]
    readings += [(offset, {"a": 9.5}) for offset in rng.sample(sorted(set(range(WINDOW_MS)) -
                                                                         {o for o, _ in readings}), 20)]
    rng.shuffle(readings)
    whole = _stored_sensors([readings])
    assert _stored_sensors([readings[:100], readings[100:250], readings[250:]]) == whole
    assert _stored_sensors([[reading] for reading in readings]) == whole
    latest = max(readings)
    assert whole["a"]["M"]["last"] == items.number(latest[1]["a"])
    assert whole["a"]["M"]["last_timestamp_ms"] == items.number(latest[0])
    assert whole["a"]["M"]["count"] == items.number(320) and whole["b"]["M"]["count"] == items.number(300)
    # Of equal extremes the first added stays (2 and 2.0 are stored as written).
    first_one = next(values["b"] for _, values in readings if values["b"] == 2)
    assert whole["b"]["M"]["max"] == items.number(first_one)

def test_same_identity_other_content_is_a_conflict_kept_and_the_first_stays():
    table: dict = {}
    plans = run_in_memory(_planner(), [_reading(1, "press-001", NOW_MS - 1000, temperature=70.0),
                                       _reading(2, "press-001", NOW_MS - 1000, temperature=71.0)], table)
    assert _quarantined(plans) == [("conflict", "2")]
    window = next(item for key, item in table.items() if key[1].endswith("#metrics"))
    assert window["sensors"]["M"]["temperature"]["M"]["last"] == {"N": "70.0"}
    # The same conflicting message again, under a new sequence number and receive time: kept once.
    again = run_in_memory(_planner(), [_reading(9, "press-001", NOW_MS - 1000, received_at=NOW_MS + 5,
                                                temperature=71.0)], table)
    assert _quarantined(again) == [] and sum(p.already_quarantined for p in again) == 1


def test_republished_reading_is_a_duplicate_not_a_conflict():
    table: dict = {}
    run_in_memory(_planner(), [_reading(1, "press-001", NOW_MS - 1000, temperature=70.0)], table)
    before = dict(table)
    plans = run_in_memory(_planner(), [_reading(50, "press-001", NOW_MS - 1000, received_at=NOW_MS + 777,
                                                temperature=70.0)], table)
    assert (sum(p.duplicates for p in plans), _quarantined(plans)) == (1, [])
    assert table == before


def test_garbage_is_quarantined_once_per_sequence_number_whatever_the_order():
    table: dict = {}
    later = run_in_memory(_planner(), [_record(b"garbage", 20), _record(b"garbage", 21)], table)
    assert _quarantined(later) == [("not_json", "20"), ("not_json", "21")], "two equal garbage records are two"
    # An earlier batch completing after the later one (parallel batches, a replay): still kept.
    earlier = run_in_memory(_planner(), [_record(b"garbage", 10)], table)
    assert _quarantined(earlier) == [("not_json", "10")]
    replayed = run_in_memory(_planner(), [_record(b"garbage", 10), _record(b"garbage", 21)], table)
    assert _quarantined(replayed) == [] and sum(p.already_quarantined for p in replayed) == 2


def test_bad_message_with_identity_is_kept_once_whatever_its_sequence_number():
    table: dict = {}
    first = run_in_memory(_planner(), [_record(json.dumps(_bad_message()).encode(), 5)], table)
    assert _quarantined(first) == [("reading_value", "5")]
    again = run_in_memory(_planner(), [_record(json.dumps(_bad_message(received_at=NOW_MS + 9)).encode(), 3)], table)
    assert _quarantined(again) == []


def _device_series(count: int = 600) -> list[dict]:
    rng = random.Random(11)
    records = []
    for i in range(count):
        temperature = 70.0 + rng.gauss(0, 0.3) + (25.0 if 300 <= i < 340 else 0.0)  # a level shift
        vibration = 2.0 + rng.gauss(0, 0.05) + (9.0 if i == 450 else 0.0)         # a spike
        records.append(_reading(i + 1, "press-001", NOW_MS - 900_000 + i * 1000, temperature=round(temperature, 3),
                                vibration=round(vibration, 4)))
        if i % 97 == 0:
            records.append(_reading(100_000 + i, "press-002", NOW_MS - 900_000 + i * 1000, temperature=500.0))
    return records


@pytest.mark.parametrize("cuts", [[], [1], [299, 300, 301], [150, 450], list(range(0, 700, 37)), [339, 341]])
def test_table_is_the_same_however_the_batches_were_cut(cuts):
    records = _device_series()
    whole: dict = {}
    run_in_memory(_planner(), records, whole)
    split: dict = {}
    bounds = [0] + [c for c in cuts if 0 < c < len(records)] + [len(records)]
    for start, end in zip(bounds, bounds[1:]):
        run_in_memory(_planner(), records[start:end], split)
    assert split == whole
    kinds = {item["kind"]["S"] for item in whole.values() if item["item_type"]["S"] == "episode"}
    assert "limit" in kinds and len(kinds) >= 2, kinds


def test_replaying_any_part_changes_nothing():
    records = _device_series()
    table: dict = {}
    run_in_memory(_planner(), records, table)
    before = dict(table)
    for start, end in ((0, 50), (290, 345), (440, 460), (0, len(records))):
        plans = run_in_memory(_planner(), records[start:end], table)
        assert all(not plan.writes for plan in plans), (start, end)
    assert table == before


def test_a_late_reading_outside_the_limits_is_a_closed_limit_episode_and_leaves_the_model_alone():
    table: dict = {}
    run_in_memory(_planner(), [_reading(10, "press-001", NOW_MS - 1000, temperature=70.0)], table)
    state_before = table[("press-001", "state")]
    # Delivered after a newer one (a batch replayed after later batches succeeded).
    plans = run_in_memory(_planner(), [_reading(5, "press-001", NOW_MS - 5000, temperature=500.0)], table)
    assert (sum(p.late for p in plans), sum(p.episodes_opened.get("limit", 0) for p in plans)) == (1, 1)
    episode = table[("press-001", "2026-11-19T09:46:35.000Z#episode#temperature")]
    assert (episode["kind"]["S"], episode["started_at"]["N"], episode["ended_at"]["N"], episode["readings"]["N"]) == (
        "limit", str(NOW_MS - 5000), str(NOW_MS - 5000), "1")
    assert table[("press-001", "state")] == state_before
    again = run_in_memory(_planner(), [_reading(5, "press-001", NOW_MS - 5000, temperature=500.0)], table)
    assert all(not plan.writes for plan in again), "a replay of it changes nothing"
