"""Storage faults: retried within the invocation's time, reported from the first
affected record when they persist, and converging once Lambda retries from there."""

import json

import botocore.exceptions
import pytest

from tests.conftest import NOW_MS, LambdaContext, sequence, steady_batch


def _client_error(code: str, operation: str, status: int = 503) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.fixture
def inject(index):
    """Register a botocore hook on the processor's own clients; removed after the test."""
    registered = []

    def register(client, event, hook):
        client.meta.events.register(event, hook)
        registered.append((client, event, hook))

    yield register
    for client, event, hook in registered:
        client.meta.events.unregister(event, hook)


def _reference_state(index, stores, batch):
    stores.clear()
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    state = stores.state()
    stores.clear()
    return state


def test_persistent_archive_failure_reports_the_first_record_and_stores_nothing(index, stores, inject):
    batch = steady_batch(devices=2, readings=10)
    expected = _reference_state(index, stores, batch)
    s3 = index.PROCESSOR.archive.client

    def fail(**_):
        raise _client_error("InternalError", "PutObject", 500)

    inject(s3, "before-call.s3.PutObject", fail)
    response = index.handler(batch.event(), LambdaContext(remaining_ms=2_500))
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    assert stores.items() == [], "nothing may reach the table before the archive holds it"
    s3.meta.events.unregister("before-call.s3.PutObject", fail)
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected


def test_throttled_writes_are_retried_within_the_invocation(index, stores, inject):
    batch = steady_batch(devices=2, readings=10)
    expected = _reference_state(index, stores, batch)
    calls = {"count": 0}

    def throttle_twice(**_):
        calls["count"] += 1
        if calls["count"] <= 2:
            raise _client_error("ProvisionedThroughputExceededException", "BatchWriteItem", 400)

    inject(index.PROCESSOR.table.client, "before-call.dynamodb.BatchWriteItem", throttle_twice)
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected


def _leave_unprocessed(table, inject, partition_key: str):
    """Make BatchWriteItem return the items of one partition as UnprocessedItems, every time;
    returns a function that stops it."""
    left = []

    def hold_back(params, **_):
        requests = params["RequestItems"][table.table_name]
        left[:] = [r for r in requests if r["PutRequest"]["Item"]["device_id"]["S"] == partition_key]
        params["RequestItems"][table.table_name] = [r for r in requests if r not in left]

    def report_unprocessed(parsed, **_):
        if left:
            parsed["UnprocessedItems"] = {table.table_name: list(left)}

    inject(table.client, "before-parameter-build.dynamodb.BatchWriteItem", hold_back)
    inject(table.client, "after-call.dynamodb.BatchWriteItem", report_unprocessed)

    def stop():
        table.client.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem", hold_back)
        table.client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", report_unprocessed)
    return stop


def test_unprocessed_items_for_one_device_are_reported_from_its_first_record(index, stores, inject):
    batch = steady_batch(devices=3, readings=10)
    expected_items, expected_archive = _reference_state(index, stores, batch)
    failing_device = "press-001"
    stop = _leave_unprocessed(index.PROCESSOR.table, inject, failing_device)
    response = index.handler(batch.event(), LambdaContext(remaining_ms=3_000))
    first_of_device = next(r for r in batch.records if r["kinesis"]["partitionKey"] == failing_device)
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(first_of_device)}]}
    assert not any(i["device_id"]["S"] == failing_device for i in stores.items())

    stop()
    retry_from = batch.records.index(first_of_device)
    assert index.handler(batch.event(batch.records[retry_from:]), LambdaContext()) == {"batchItemFailures": []}
    assert stores.items() == expected_items
    # The archive holds every reading; the retried device's readings a second
    # time, in the retry's object (see docs/processor.md, "Residual duplicates").
    identities = [(line["device_id"], line["timestamp"]) for line in stores.archived_lines("raw/")]
    expected_identities = {(line["device_id"], line["timestamp"]) for line in
                           map(json.loads, _raw_lines(expected_archive))}
    assert set(identities) == expected_identities
    assert len(identities) - len(set(identities)) == 10


def test_table_read_failure_reports_the_whole_batch(index, stores, inject):
    batch = steady_batch(devices=1, readings=5)

    def fail(**_):
        raise _client_error("AccessDeniedException", "BatchGetItem", 400)

    inject(index.PROCESSOR.table.client, "before-call.dynamodb.BatchGetItem", fail)
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    assert stores.state() == ([], {})


def test_persistent_ledger_failure_is_reported_and_the_retry_keeps_one_quarantine_object(index, stores, inject):
    batch = steady_batch(devices=2, readings=5)
    bad = batch.raw(b"not json")
    batch.reading("press-000", NOW_MS - 1000, temperature=70.0)
    expected = _reference_state(index, stores, batch)
    stop = _leave_unprocessed(index.PROCESSOR.table, inject, "_shard/shardId-000000000000")
    response = index.handler(batch.event(), LambdaContext(remaining_ms=3_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(bad)}]}
    stop()
    retry_from = batch.records.index(bad)
    assert index.handler(batch.event(batch.records[retry_from:]), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected


def _raw_lines(objects: dict[str, list[str]]) -> list[str]:
    return [line for key, versions in objects.items() if key.startswith("raw/")
            for content in versions for line in content.splitlines()]
