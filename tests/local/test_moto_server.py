"""The Kinesis fix in harness/moto_server.py changes speed, not behaviour."""

import boto3
import pytest

from local.processes import free_port, start_module, stop

RECORDS = 1_200


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """One patched server for the module (a server costs a second of CPU to start): the tests here
    use resources of their own on it, a stream and a table each named `patched`."""
    port = free_port()
    server = start_module("harness.moto_server", port, tmp_path_factory.mktemp("moto") / "moto.log")
    yield f"http://127.0.0.1:{port}"
    stop(server)


def client_for(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="ap-southeast-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="module")
def kinesis(moto_endpoint):
    client = client_for("kinesis", moto_endpoint)
    client.create_stream(StreamName="patched", ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName="patched", WaiterConfig={"Delay": 0.2})
    return client


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


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint):
    client = client_for("dynamodb", moto_endpoint)
    client.create_table(TableName="patched", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return client


def _put(pk: str, version: int, expected: int | None) -> dict:
    condition = ({"ConditionExpression": "attribute_not_exists(pk)"} if expected is None else
                 {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected)}}})
    return {"Put": {"TableName": "patched", "Item": {"pk": {"S": pk}, "version": {"N": str(version)}}, **condition}}


def test_a_patched_transaction_commits_all_or_nothing_and_names_the_failed_condition(dynamodb):
    dynamodb.transact_write_items(TransactItems=[_put("a", 1, None), _put("b", 1, None)])
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
        # "a" would move to 2 and "c" be created, but "b" is not at version 5: nothing of it may stay.
        dynamodb.transact_write_items(TransactItems=[_put("a", 2, 1), _put("c", 1, None), _put("b", 6, 5)])
    reasons = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    items = {item["pk"]["S"]: item["version"]["N"] for item in dynamodb.scan(TableName="patched")["Items"]}
    assert items == {"a": "1", "b": "1"}
