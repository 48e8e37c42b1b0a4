"""Failed batches saved by the mapping's on-failure destination are replayed through the
processor, against moto's server, and replaying twice changes nothing."""

import json

import pytest

from operations.replay import ReplayError, chunks, replay
from tests.conftest import LambdaContext, steady_batch

FAILURE_KEY = "aws/lambda/0aec4ba3-aaaa-bbbb-cccc-000000000000/shardId-000000000000/2026/11/19/2026-11-19T09.46.40-{}"


def _save_failed_batch(stores, records, name="a"):
    """An invocation record as Lambda writes it to an S3 on-failure destination."""
    invocation = {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": len(records),
                             "startSequenceNumber": records[0]["kinesis"]["sequenceNumber"],
                             "endSequenceNumber": records[-1]["kinesis"]["sequenceNumber"]},
        "payload": {"Records": records},
    }
    stores.s3.put_object(Bucket=stores.pipeline.archive_bucket, Key=FAILURE_KEY.format(name),
                         Body=json.dumps(invocation).encode())


def _invoke(index):
    return lambda event: index.handler(event, LambdaContext())


def _table_and_archive(stores):
    items, objects = stores.state()
    return items, {key: versions for key, versions in objects.items() if not key.startswith("aws/lambda/")}


def test_replay_stores_the_failed_records_once_even_when_run_twice(index, stores):
    batch = steady_batch(devices=2, readings=20)
    batch.raw(b"still not json")
    _save_failed_batch(stores, batch.records[:30], "a")
    _save_failed_batch(stores, batch.records[30:], "b")
    sent = replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", _invoke(index), report=lambda _: None)
    assert sent == len(batch.records)
    first = _table_and_archive(stores)
    assert sum(int(i["reading_count"]["N"]) for i in first[0] if i["sk"]["S"].endswith("#metrics")) == 40
    assert len(stores.archived_lines("quarantine/")) == 1
    assert replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", _invoke(index),
                  report=lambda _: None) == sent
    assert _table_and_archive(stores) == first


def test_replay_after_records_were_partly_stored_fills_in_only_the_rest(index, stores):
    batch = steady_batch(devices=2, readings=20)
    assert index.handler(batch.event(batch.records[:10]), LambdaContext()) == {"batchItemFailures": []}
    _save_failed_batch(stores, batch.records)
    replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", _invoke(index), report=lambda _: None)
    windows = [i for i in stores.items() if i["sk"]["S"].endswith("#metrics")]
    assert sum(int(w["reading_count"]["N"]) for w in windows) == 40


def test_dry_run_sends_nothing(index, stores):
    _save_failed_batch(stores, steady_batch(devices=1, readings=3).records)
    listed = []
    assert replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", _invoke(index), dry_run=True,
                  report=listed.append) == 0
    assert len(listed) == 1 and stores.items() == []


def test_an_object_without_records_is_refused_with_a_reason(index, stores):
    stores.s3.put_object(Bucket=stores.pipeline.archive_bucket, Key=FAILURE_KEY.format("pointer"),
                         Body=json.dumps({"KinesisBatchInfo": {"shardId": "s"}}).encode())
    with pytest.raises(ReplayError, match="holds no payload.Records"):
        replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", _invoke(index), report=lambda _: None)


def test_large_batches_are_sent_in_chunks_under_the_payload_limit():
    records = [{"kinesis": {"data": "x" * 1000, "sequenceNumber": str(i)}} for i in range(100)]
    parts = list(chunks(records, limit=20_000))
    assert [r for part in parts for r in part] == records
    assert all(len(json.dumps(part)) <= 20_000 + 1100 for part in parts) and len(parts) > 1


def test_a_failing_chunk_is_retried_from_the_reported_record_a_bounded_number_of_times(index, stores):
    batch = steady_batch(devices=2, readings=5)
    _save_failed_batch(stores, batch.records)
    sent_events = []
    outage = {"calls": 2}

    def invoke(event):
        sent_events.append([record["kinesis"]["sequenceNumber"] for record in event["Records"]])
        if outage["calls"]:  # the processor's answer while its stores are still down
            outage["calls"] -= 1
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["kinesis"]["sequenceNumber"]}]}
        return _invoke(index)(event)

    assert replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", invoke, report=lambda _: None,
                  attempts=3, backoff_s=0) == 10
    assert len(sent_events) == 3 and sent_events[0] == sent_events[2]

    outage["calls"] = 10
    with pytest.raises(ReplayError, match="after 3 attempts"):
        replay(stores.s3, stores.pipeline.archive_bucket, "aws/lambda/", invoke, report=lambda _: None,
               attempts=3, backoff_s=0)
    assert outage["calls"] == 7, "stops after its attempts, it does not retry forever"
