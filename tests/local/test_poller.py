"""The local event source mapping reads responses and failures as Lambda does."""

import base64
import json
import time

import pytest

from local.failure_destination import ArchiveFailureDestination
from local.poller import RECORD_AGE_EXCEEDED, RETRIES_EXHAUSTED, LatencyHistogram, ShardPoller, retry_from
from harness.provision import MappingSettings
from operations.replay import failed_batches

SHARD = "shardId-000000000001"
STREAM_ARN = "arn:aws:kinesis:ap-southeast-1:123456789012:stream/iot-sensor-stream-dev"


def event_records(count: int, arrived: float | None = None) -> list[dict]:
    arrived = time.time() if arrived is None else arrived
    return [{"kinesis": {"sequenceNumber": str(n), "partitionKey": "press-001", "approximateArrivalTimestamp": arrived,
                         "data": base64.b64encode(json.dumps({"timestamp": int(arrived * 1000)}).encode()).decode()},
             "eventID": f"{SHARD}:{n}", "eventSourceARN": STREAM_ARN}
            for n in range(1, count + 1)]


def sequences(records: list[dict]) -> list[int]:
    return [int(r["kinesis"]["sequenceNumber"]) for r in records]


class Function:
    """Stands in for the handler: records each batch and answers with `respond(batch, call)`."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.batches: list[list[int]] = []

    def __call__(self, event, context):
        assert context.get_remaining_time_in_millis() > 0 and context.aws_request_id
        self.batches.append(sequences(event["Records"]))
        return self.respond(self.batches[-1], len(self.batches))


def poller(function: Function, failed: list, **mapping) -> ShardPoller:
    settings = MappingSettings(**{
        "batch_size": 10, "batching_window_seconds": 0, "maximum_retry_attempts": 2,
        "maximum_record_age_seconds": 3600, "bisect_on_error": True, "report_batch_item_failures": True,
        "starting_position": "TRIM_HORIZON", **mapping})
    return ShardPoller(None, "iot-sensor-stream-dev", STREAM_ARN, SHARD, settings, function, "iot-processor-dev", 60,
                       lambda shard, records, condition: failed.append((condition, sequences(records))),
                       LatencyHistogram())


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "ok"])
def test_an_empty_or_missing_failure_list_is_a_success(response):
    assert retry_from(response, event_records(5), reports_item_failures=True) is None


@pytest.mark.parametrize("identifier", ["", None, "999"])
def test_an_empty_null_or_unknown_identifier_fails_the_whole_batch(identifier):
    response = {"batchItemFailures": [{"itemIdentifier": "4"}, {"itemIdentifier": identifier}]}
    assert retry_from(response, event_records(5), reports_item_failures=True) == 0


def test_the_batch_resumes_from_the_lowest_reported_sequence_number():
    response = {"batchItemFailures": [{"itemIdentifier": "4"}, {"itemIdentifier": "2"}]}
    assert retry_from(response, event_records(5), reports_item_failures=True) == 1


def test_reported_failures_are_ignored_when_the_mapping_does_not_ask_for_them():
    response = {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert retry_from(response, event_records(5), reports_item_failures=False) is None


def test_a_partial_failure_is_retried_from_the_failed_record_only():
    function = Function(lambda batch, call: {"batchItemFailures": [{"itemIdentifier": "4"}]} if call == 1 else {})
    failed: list = []
    shard = poller(function, failed)
    shard._deliver(event_records(10))
    assert function.batches == [list(range(1, 11)), list(range(4, 11))]
    assert (shard.records_done, shard.partial_retries, failed) == (10, 1, [])


def test_a_function_error_bisects_until_the_bad_record_goes_to_the_failure_destination():
    def respond(batch, _call):
        if 7 in batch:
            raise RuntimeError("poison record")
        return {}

    function = Function(respond)
    failed: list = []
    shard = poller(function, failed)
    shard._deliver(event_records(10))
    assert failed == [(RETRIES_EXHAUSTED, [6, 7])]
    assert function.batches == [list(range(1, 11)), [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [6, 7], [8, 9, 10]]
    assert shard.records_done == 10 and shard.bisections == 2


def test_a_batch_that_keeps_failing_gives_up_after_the_mappings_retries():
    function = Function(lambda batch, _call: {"batchItemFailures": [{"itemIdentifier": str(batch[0] + 1)}]})
    failed: list = []
    shard = poller(function, failed, maximum_retry_attempts=1)
    shard._deliver(event_records(5))
    assert function.batches == [[1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert failed == [(RETRIES_EXHAUSTED, [3, 4, 5])]


def test_records_past_the_maximum_age_are_not_invoked_but_sent_to_the_failure_destination():
    function = Function(lambda batch, _call: {})
    failed: list = []
    shard = poller(function, failed, maximum_record_age_seconds=60)
    shard._deliver(event_records(3, arrived=time.time() - 120))
    assert function.batches == [] and failed == [(RECORD_AGE_EXCEEDED, [1, 2, 3])]


def test_failed_batches_land_where_the_replay_command_finds_them(local_aws, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url)
    destination = ArchiveFailureDestination(s3, local_aws.archive_bucket, "4b390f5a-aaaa-bbbb-cccc-000000000000",
                                            "arn:aws:lambda:ap-southeast-1:123456789012:function:iot-processor-dev",
                                            STREAM_ARN, tmp_path)
    records = event_records(3)
    destination(SHARD, records, RETRIES_EXHAUSTED)
    [key] = destination.keys
    assert key.startswith(f"aws/lambda/4b390f5a-aaaa-bbbb-cccc-000000000000/{SHARD}/")
    assert list(failed_batches(s3, local_aws.archive_bucket, key)) == [(key, records)]
    invocation = json.loads((tmp_path / key).read_text())
    assert invocation["KinesisBatchInfo"]["startSequenceNumber"] == "1"
    assert invocation["requestContext"]["condition"] == RETRIES_EXHAUSTED
