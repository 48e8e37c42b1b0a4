"""The Kinesis fix in local/moto_server.py changes speed, not behaviour."""

import boto3
import pytest

from local.processes import free_port, start_module, stop

RECORDS = 1_200


@pytest.fixture(scope="module")
def kinesis(tmp_path_factory):
    port = free_port()
    server = start_module("local.moto_server", port, tmp_path_factory.mktemp("moto") / "moto.log")
    client = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}", region_name="ap-southeast-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_stream(StreamName="patched", ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName="patched", WaiterConfig={"Delay": 0.2})
    yield client
    stop(server)


def read_all(kinesis, **position) -> list[dict]:
    shard = kinesis.list_shards(StreamName="patched")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="patched", ShardId=shard, **position)["ShardIterator"]
    records = []
    while True:
        response = kinesis.get_records(ShardIterator=iterator, Limit=500)
        records += response["Records"]
        if not response["Records"]:
            return records
        iterator = response["NextShardIterator"]


def test_a_patched_shard_returns_every_record_once_in_order_from_any_position(kinesis):
    sent = [f"record-{n}".encode() for n in range(RECORDS)]
    for start in range(0, RECORDS, 500):
        response = kinesis.put_records(StreamName="patched", Records=[
            {"Data": data, "PartitionKey": "press-001"} for data in sent[start:start + 500]])
        assert response["FailedRecordCount"] == 0
    everything = read_all(kinesis, ShardIteratorType="TRIM_HORIZON")
    assert [r["Data"] for r in everything] == sent
    numbers = [int(r["SequenceNumber"]) for r in everything]
    assert numbers == sorted(set(numbers))
    middle = everything[700]["SequenceNumber"]
    at = read_all(kinesis, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=middle)
    after = read_all(kinesis, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=middle)
    assert [r["Data"] for r in at] == sent[700:]
    assert [r["Data"] for r in after] == sent[701:]
    assert read_all(kinesis, ShardIteratorType="LATEST") == []
