"""Effectively once: replays, bisected halves and duplicates leave DynamoDB and S3
exactly as the first delivery left them (same items, same objects, no new versions)."""

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
    batch = _with_trouble()
    _deliver(index, batch)
    first = stores.state()
    republished = BatchBuilder(next_sequence=batch.next_sequence + 1000)
    for record in batch.records[:-1]:  # the devices re-publish every good message
        republished.raw(__import__("base64").b64decode(record["kinesis"]["data"]))
    assert _deliver(index, republished) == {"batchItemFailures": []}
    assert stores.state() == first


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
