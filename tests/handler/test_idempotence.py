"""Effectively once: replays, bisected halves and duplicates leave DynamoDB and S3
exactly as the first delivery left them (same items, same objects, no new versions)."""

import base64
import json

from tests.conftest import NOW_MS, BatchBuilder, LambdaContext, steady_batch


def _deliver(index, batch, records=None):
    return index.handler(batch.event(records), LambdaContext())


def _with_trouble() -> BatchBuilder:
    batch = steady_batch(devices=3, readings=40)
    batch.reading("press-001", NOW_MS - 1000, temperature=500.0)  # a limit anomaly
    batch.raw(b"not json at all")                                    # a quarantined record
    return batch


def test_replaying_the_whole_batch_changes_nothing(index, stores):
    batch = _with_trouble()
    assert _deliver(index, batch) == {"batchItemFailures": []}
    first = stores.state()
    assert _deliver(index, batch) == {"batchItemFailures": []}
    assert stores.state() == first


def test_replaying_a_bisected_half_changes_nothing(index, stores):
    batch = _with_trouble()
    _deliver(index, batch)
    first = stores.state()
    half = len(batch.records) // 2
    assert _deliver(index, batch, batch.records[:half]) == {"batchItemFailures": []}
    assert _deliver(index, batch, batch.records[half:]) == {"batchItemFailures": []}
    assert stores.state() == first


def test_replayed_bad_record_is_not_quarantined_again(index, stores):
    batch = _with_trouble()
    _deliver(index, batch)
    quarantine_keys = [key for key in stores.objects() if key.startswith("quarantine/")]
    _deliver(index, batch, batch.records[-1:])
    assert [key for key in stores.objects() if key.startswith("quarantine/")] == quarantine_keys


def test_duplicates_with_new_sequence_numbers_are_stored_once(index, stores):
    batch = steady_batch(devices=3, readings=40)
    batch.reading("press-001", NOW_MS - 1000, temperature=500.0)  # a limit anomaly
    batch.message({"schema_version": 1, "device_id": "press-002", "timestamp": NOW_MS - 500,
                   "readings": {"temperature": "hot"}}, device_id="press-002")  # a bad message with an identity
    _deliver(index, batch)
    first = stores.state()
    assert len(stores.archived_lines("quarantine/")) == 1
    republished = BatchBuilder(next_sequence=batch.next_sequence + 1000)
    for record in batch.records:  # every message put again, under new sequence numbers
        republished.raw(base64.b64decode(record["kinesis"]["data"]))
    assert _deliver(index, republished) == {"batchItemFailures": []}
    assert stores.state() == first
    # Garbage bytes have no identity but their sequence number: see test_index's equal garbage test.


def test_device_republishing_a_bad_message_is_a_duplicate(index, stores, capsys):
    message = {"schema_version": 1, "device_id": "press-001", "timestamp": NOW_MS - 500, "readings": {"temperature": "hot"}}
    first_publish = BatchBuilder()
    first_publish.message(message)
    _deliver(index, first_publish)
    before = stores.state()
    # Published again: the rule stamps a new receive time, Kinesis a new sequence number.
    republished = BatchBuilder(next_sequence=first_publish.next_sequence + 10)
    payload = json.loads(base64.b64decode(first_publish.records[0]["kinesis"]["data"]))
    republished.raw(json.dumps({**payload, "received_at": payload["received_at"] + 1234}).encode())
    capsys.readouterr()
    assert _deliver(index, republished) == {"batchItemFailures": []}
    assert stores.state() == before
    metrics = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (metrics["RecordsQuarantined"], metrics["DuplicatesSkipped"]) == (0, 1)


def test_duplicate_within_one_batch_is_counted_once(index, stores, capsys):
    batch = BatchBuilder()
    batch.reading("press-001", NOW_MS - 3000, temperature=70.0)
    batch.reading("press-001", NOW_MS - 3000, temperature=70.0)
    _deliver(index, batch)
    window = [i for i in stores.items() if i["sk"]["S"].endswith("#metrics")][0]
    assert window["reading_count"]["N"] == "1"
    assert len(stores.archived_lines("raw/")) == 1
    metrics = json.loads(capsys.readouterr().out.splitlines()[0])
    assert metrics["DuplicatesSkipped"] == 1


def test_two_batches_equal_one_batch_with_both(index, stores):
    batch = _with_trouble()
    half = len(batch.records) // 2
    _deliver(index, batch, batch.records[:half])
    _deliver(index, batch, batch.records[half:])
    split_items = stores.items()
    stores.clear()
    _deliver(index, batch)
    assert _without_detector_state(stores.items()) == _without_detector_state(split_items)


def _without_detector_state(items):
    # Aggregates and anomalies must match exactly; the detector's floating state
    # may differ in the last bits only through the order of its updates.
    return [i for i in items if i["sk"]["S"] != "state"]
