"""The handler's contract: exact responses for mixed batches, every bad input kept with its reason."""

import base64
import json

import pytest

from tests.conftest import NOW_MS, BatchBuilder, LambdaContext, sequence

GOOD = {"temperature": 71.5, "vibration": 2.1}


def _message(**overrides):
    message = {"schema_version": 1, "device_id": "press-001", "timestamp": NOW_MS - 1000, "readings": dict(GOOD)}
    message.update(overrides)
    return {key: value for key, value in message.items() if value is not ...}


BAD_INPUTS = {
    "not_base64": lambda b: b.records.append({**b.raw(b"x"), "kinesis": {**b.records.pop()["kinesis"], "data": "%%%not-base64%%%"}}),
    "too_large": lambda b: b.raw(b'{"pad":"' + b"x" * 20_000 + b'"}'),
    "not_json": lambda b: b.raw(b"temperature=71.5"),
    "not_object": lambda b: b.raw(b"[1, 2, 3]"),
    "schema_version": lambda b: b.message(_message(schema_version=2)),
    "device_id": lambda b: b.raw(json.dumps(_message(device_id="bad/device")).encode()),
    "device_id_missing": lambda b: b.message(_message(device_id=...)),
    "device_mismatch": lambda b: b.message(_message(device_id="press-999"), device_id="press-001"),
    "timestamp_text": lambda b: b.message(_message(timestamp="2026-11-19T09:46:39Z")),
    "timestamp_future": lambda b: b.message(_message(timestamp=NOW_MS + 3_600_000)),
    "timestamp_unset_clock": lambda b: b.message(_message(timestamp=86_400_000)),
    "readings_missing": lambda b: b.message(_message(readings=...)),
    "readings_empty": lambda b: b.message(_message(readings={})),
    "reading_text": lambda b: b.message(_message(readings={"temperature": "hot"})),
    "reading_bool": lambda b: b.message(_message(readings={"temperature": True})),
    "reading_nan": lambda b: b.raw(b'{"schema_version":1,"device_id":"press-001","timestamp":1795081599000,"readings":{"temperature":NaN}}'),
    "reading_huge": lambda b: b.message(_message(readings={"temperature": 1e300})),
    "sensor_name": lambda b: b.message(_message(readings={"Temp Sensor": 1.0})),
    "optional_field": lambda b: b.message(_message(firmware=["1", "2"])),
    "device_id_list": lambda b: b.raw(json.dumps(_message(device_id=["press-001"])).encode()),
    "device_id_object": lambda b: b.raw(json.dumps(_message(device_id={"id": "press-001"})).encode()),
    "timestamp_past_2100_with_forged_receipt": lambda b: b.raw(json.dumps(
        _message(timestamp=10**19, received_at=10**19 + 1)).encode()),
}
EXPECTED_REASON = {
    "device_id_missing": "device_id", "timestamp_text": "timestamp", "timestamp_future": "timestamp",
    "timestamp_unset_clock": "timestamp", "readings_missing": "readings", "readings_empty": "readings",
    "reading_text": "reading_value", "reading_bool": "reading_value", "reading_nan": "not_json",
    "reading_huge": "reading_value", "sensor_name": "readings", "device_id_list": "device_id",
    "device_id_object": "device_id", "timestamp_past_2100_with_forged_receipt": "timestamp",
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_record_is_quarantined_with_its_reason_and_does_not_fail_the_batch(index, stores, case):
    batch = BatchBuilder()
    batch.reading("press-001", NOW_MS - 2000, **GOOD)
    BAD_INPUTS[case](batch)
    bad = batch.records[-1]
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": []}
    quarantined = stores.archived_lines("quarantine/")
    assert [line["reason"] for line in quarantined] == [EXPECTED_REASON.get(case, case)]
    assert quarantined[0]["sequence_number"] == sequence(bad)
    assert quarantined[0]["detail"]
    if case != "not_base64":
        # Kept whole: every byte of the record, however large.
        assert base64.b64decode(quarantined[0]["data_base64"]) == base64.b64decode(bad["kinesis"]["data"])
    assert len(stores.archived_lines("raw/")) == 1, "the good reading beside it is archived"


def test_mixed_batch_stores_good_readings_and_quarantines_bad_in_one_object(index, stores):
    batch = BatchBuilder()
    for i in range(5):
        batch.reading("press-001", NOW_MS - 10_000 + i * 1000, **GOOD)
    batch.raw(b"\x00\xff garbage")
    batch.raw(b"{}")
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": []}
    objects = stores.objects()
    assert sorted(key.split("/")[0] for key in objects) == ["quarantine", "raw"]
    assert all(key.endswith(".ndjson.gz") and "/dt=2026-11-19/hour=09/" in key for key in objects)
    assert len(stores.archived_lines("raw/")) == 5
    assert [q["reason"] for q in stores.archived_lines("quarantine/")] == ["not_json", "schema_version"]


def test_metrics_window_holds_count_min_max_mean_last_per_sensor(index, stores):
    batch = BatchBuilder()
    start = NOW_MS - NOW_MS % 60_000 - 60_000
    for i, value in enumerate([70.0, 72.0, 71.0]):
        batch.reading("press-001", start + i * 1000, temperature=value)
    index.handler(batch.event(), LambdaContext())
    window = [i for i in stores.items() if i["sk"]["S"].endswith("#metrics")]
    assert len(window) == 1
    temperature = window[0]["sensors"]["M"]["temperature"]["M"]
    assert {name: float(value["N"]) for name, value in temperature.items() if name != "sum_exact"} == {
        "count": 3, "sum": 213.0, "min": 70.0, "max": 72.0, "mean": 71.0, "last": 71.0,
        "last_timestamp_ms": start + 2000,
    }
    assert temperature["sum_exact"] == {"S": "213:0"}
    assert window[0]["reading_count"] == {"N": "3"}
    assert window[0]["sk"]["S"] == "2026-11-19T09:45:00.000Z#metrics"
    assert int(window[0]["expires_at"]["N"]) == start // 1000 + 30 * 86_400


def test_limit_violation_opens_an_episode_item_with_its_schema(index, stores):
    batch = BatchBuilder()
    batch.reading("press-001", NOW_MS - 5000, temperature=400.0)
    index.handler(batch.event(), LambdaContext())
    episodes = [i for i in stores.items() if "#episode#" in i["sk"]["S"]]
    assert len(episodes) == 1, episodes
    episode = episodes[0]
    assert episode["sk"]["S"] == "2026-11-19T09:46:35.000Z#episode#temperature"
    assert (episode["device_id"]["S"], episode["item_type"]["S"], episode["scope"]["S"], episode["kind"]["S"],
            episode["sensors"]["SS"]) == ("press-001", "episode", "temperature", "limit", ["temperature"])
    assert (int(episode["started_at"]["N"]), int(episode["readings"]["N"])) == (NOW_MS - 5000, 1)
    assert "ended_at" not in episode, "open until the sensor has been normal for the settle time"
    assert float(episode["peak_score"]["N"]) > 1.0


def test_empty_and_malformed_events_return_no_failures(index, stores):
    assert index.handler({"Records": []}, LambdaContext()) == {"batchItemFailures": []}
    assert index.handler({}, LambdaContext()) == {"batchItemFailures": []}


def test_emits_embedded_metrics(index, stores, capsys):
    batch = BatchBuilder()
    batch.reading("press-001", NOW_MS - 5000, temperature=400.0)
    batch.raw(b"nope")
    index.handler(batch.event(), LambdaContext())
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    main = documents[0]
    assert main["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IotSensorPipeline"
    assert (main["RecordsIn"], main["ReadingsStored"], main["RecordsQuarantined"], main["AnomaliesDetected"]) == (2, 1, 1, 1)
    assert documents[1]["AnomalyKind"] == "limit" and documents[1]["AnomaliesDetected"] == 1


def test_record_without_arrival_time_or_digit_sequence_number_is_still_kept(index, stores):
    """Hand-made events (a replay tool, a test) may lack what Kinesis always sets."""
    batch = BatchBuilder()
    batch.reading("press-001", NOW_MS - 2000, **GOOD)
    odd = batch.raw(json.dumps(_message(timestamp=10**19)).encode())
    odd["kinesis"].update(sequenceNumber="not-a-number", approximateArrivalTimestamp=1e300)
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    quarantined = stores.archived_lines("quarantine/")
    assert [(q["reason"], q["sequence_number"]) for q in quarantined] == [("timestamp", "not-a-number")]


def test_equal_garbage_records_are_each_kept(index, stores):
    """Bytes with no device and timestamp have no identity but their sequence number."""
    batch = BatchBuilder()
    garbage = [batch.raw(b"\x00garbage") for _ in range(3)]
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert [q["sequence_number"] for q in stores.archived_lines("quarantine/")] == [sequence(r) for r in garbage]
