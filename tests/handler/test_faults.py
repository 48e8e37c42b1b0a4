"""Storage faults: retried within the invocation's time, reported from the batch's first
record when they persist, and converging to one clean delivery once Lambda retries."""

import json

import botocore.exceptions
import pytest

from tests.conftest import NOW_MS, LambdaContext, sequence, steady_batch


def _client_error(code: str, operation: str, status: int = 503, **extra) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra},
        operation)


def _reference_state(index, stores, batch):
    stores.clear()
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    state = stores.state()
    stores.clear()
    return state


def test_persistent_archive_failure_reports_the_first_record_and_stores_nothing(index, stores, inject):
    batch = steady_batch(devices=2, readings=10)
    expected = _reference_state(index, stores, batch)
    failing = {"on": True}

    def fail(**_):
        if failing["on"]:
            raise _client_error("InternalError", "PutObject", 500)

    inject("before-call.s3.PutObject", fail)
    response = index.handler(batch.event(), LambdaContext(remaining_ms=2_500))
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    assert stores.items() == [], "nothing may reach the table before the archive holds it"
    failing["on"] = False
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected


def test_throttled_transactions_are_retried_within_the_invocation(index, stores, inject):
    batch = steady_batch(devices=2, readings=10)
    expected = _reference_state(index, stores, batch)
    calls = {"count": 0}

    def throttle_twice(**_):
        calls["count"] += 1
        if calls["count"] <= 2:
            raise _client_error("ThrottlingException", "TransactWriteItems", 400)

    inject("before-call.dynamodb.TransactWriteItems", throttle_twice)
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert calls["count"] == 3
    assert stores.state() == expected


def _refuse_owner(partition_key: str):
    """A hook cancelling any transaction that writes `partition_key`, naming its actions as refused
    (as AWS does for an item it will not take) and the others as not attempted."""
    def cancel(params, **_):
        actions = params["TransactItems"]
        partitions = [action["Put"]["Item"]["device_id"]["S"] for action in actions]
        if partition_key in partitions:
            reasons = [{"Code": "ValidationError", "Message": "Item size has exceeded the maximum allowed size"}
                       if partition == partition_key else {"Code": "None"} for partition in partitions]
            raise _client_error("TransactionCanceledException", "TransactWriteItems", 400,
                                CancellationReasons=reasons)
    return cancel


def test_one_device_refused_costs_only_that_device_and_the_retry_converges(index, stores, inject):
    batch = steady_batch(devices=3, readings=10)
    expected_items, expected_archive = _reference_state(index, stores, batch)
    refused = {"on": True}
    cancel = _refuse_owner("press-001")
    inject("before-parameter-build.dynamodb.TransactWriteItems", lambda params, **kw: refused["on"] and cancel(params, **kw))
    response = index.handler(batch.event(), LambdaContext(remaining_ms=5_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    devices = {item["device_id"]["S"] for item in stores.items()}
    assert devices == {"press-000", "press-002"}, "the other devices' readings are stored"

    refused["on"] = False
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.items() == expected_items
    assert stores.objects() == expected_archive, "every reading archived once, in the first attempt's object"


def test_table_read_failure_reports_the_whole_batch(index, stores, inject):
    batch = steady_batch(devices=1, readings=5)

    def fail(**_):
        raise _client_error("AccessDeniedException", "BatchGetItem", 400)

    inject("before-call.dynamodb.BatchGetItem", fail)
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    assert stores.state() == ([], {})


def test_persistent_ledger_failure_is_reported_and_the_retry_keeps_one_quarantine_object(index, stores, inject):
    batch = steady_batch(devices=2, readings=5)
    batch.raw(b"not json")
    batch.reading("press-000", NOW_MS - 1000, temperature=70.0)
    expected = _reference_state(index, stores, batch)
    refused = {"on": True}
    cancel = _refuse_owner("_shard/shardId-000000000000")
    inject("before-parameter-build.dynamodb.TransactWriteItems", lambda params, **kw: refused["on"] and cancel(params, **kw))
    response = index.handler(batch.event(), LambdaContext(remaining_ms=5_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    refused["on"] = False
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected


def test_crash_after_the_archive_then_a_bisected_retry_is_one_clean_delivery(index, stores, inject):
    batch = steady_batch(devices=3, readings=12)
    batch.raw(b"garbage")
    expected = _reference_state(index, stores, batch)

    class Killed(BaseException):
        """Lambda's timeout: the invocation stops, nothing of it returns."""

    killing = {"on": True}

    def kill(**_):
        if killing["on"]:
            raise Killed()

    inject("before-call.dynamodb.TransactWriteItems", kill)
    with pytest.raises(Killed):
        index.handler(batch.event(), LambdaContext())
    killing["on"] = False
    half = len(batch.records) // 2
    assert index.handler(batch.event(batch.records[:half]), LambdaContext()) == {"batchItemFailures": []}
    assert index.handler(batch.event(batch.records[half:]), LambdaContext()) == {"batchItemFailures": []}
    assert stores.state() == expected
    lines = stores.archived_lines("raw/")
    assert len(lines) == len({(line["device_id"], line["timestamp"]) for line in lines}) == 36
    assert json.dumps(expected[1], sort_keys=True) == json.dumps(stores.objects(), sort_keys=True)
