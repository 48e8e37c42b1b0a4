"""Create the pipeline's stores in a local AWS endpoint (moto's server) from what the
program declares, not from copies of it.

The program runs under the shared mocks; the stream, table, buckets and key are
then created from the recorded resources' inputs, and the function's
environment and the mapping's settings are read the same way, so the local run
and the tests use exactly the names, keys and settings a real stack would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3

from harness.mocks import ProgramRun, run_program

STREAM = "aws:kinesis/stream:Stream"
TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


@dataclasses.dataclass(frozen=True)
class MappingSettings:
    """How the event source mapping feeds the function, as the program declares it."""

    batch_size: int
    batching_window_seconds: int
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    bisect_on_error: bool
    report_batch_item_failures: bool
    starting_position: str


@dataclasses.dataclass(frozen=True)
class LocalPipeline:
    """What was created locally, and how to run the processor against it."""

    endpoint_url: str
    region: str
    key_arn: str
    stream_name: str
    stream_arn: str
    table_name: str
    archive_bucket: str
    function_name: str
    function_environment: dict[str, str]
    function_timeout_seconds: int
    mapping: MappingSettings


def _archive_bucket(run: ProgramRun) -> dict[str, Any]:
    """The bucket the function writes to (the other is CloudTrail's)."""
    function = run.one(FUNCTION)
    bucket_names = set(function.inputs["environment"]["variables"].values())
    for bucket in run.of_type(BUCKET):
        if bucket.outputs.get("bucket") in bucket_names:
            return bucket.outputs
    raise LookupError("the program declares no bucket that the function's environment names")


def provision(run: ProgramRun, endpoint_url: str, region: str | None = None) -> LocalPipeline:
    """Create the key, stream, table and archive bucket that `run` declares at `endpoint_url`.

    `run` must be an update-mode run (resolved names), e.g. `run_program("dev")`.
    """
    if run.preview:
        raise ValueError("provision needs an update-mode run: names are unknown in a first preview")
    region = region or run.config.get("aws:region", "ap-southeast-1")
    session = boto3.session.Session(region_name=region)

    def client(service: str):
        return session.client(service, endpoint_url=endpoint_url)

    key_arn = client("kms").create_key(Description="local pipeline key")["KeyMetadata"]["Arn"]

    stream = run.one(STREAM).inputs
    kinesis = client("kinesis")
    kinesis.create_stream(
        StreamName=stream["name"],
        StreamModeDetails={"StreamMode": stream["streamModeDetails"]["streamMode"]},
    )
    kinesis.get_waiter("stream_exists").wait(StreamName=stream["name"], WaiterConfig={"Delay": 0.2})
    if stream.get("encryptionType") == "KMS":
        kinesis.start_stream_encryption(StreamName=stream["name"], EncryptionType="KMS", KeyId=key_arn)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream["name"])["StreamDescriptionSummary"]["StreamARN"]

    table = run.one(TABLE).inputs
    dynamodb = client("dynamodb")
    key_schema = [{"AttributeName": table["hashKey"], "KeyType": "HASH"}]
    if table.get("rangeKey"):
        key_schema.append({"AttributeName": table["rangeKey"], "KeyType": "RANGE"})
    dynamodb.create_table(
        TableName=table["name"],
        BillingMode=table["billingMode"],
        KeySchema=key_schema,
        AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attributes"]],
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
    )
    if table.get("ttl", {}).get("enabled"):
        dynamodb.update_time_to_live(
            TableName=table["name"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl"]["attributeName"]},
        )

    bucket_name = _archive_bucket(run)["bucket"]
    s3 = client("s3")
    s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket_name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )

    function = run.one(FUNCTION).inputs
    mapping = run.one(MAPPING).inputs
    return LocalPipeline(
        endpoint_url=endpoint_url,
        region=region,
        key_arn=key_arn,
        stream_name=stream["name"],
        stream_arn=stream_arn,
        table_name=table["name"],
        archive_bucket=bucket_name,
        function_name=function["name"],
        function_environment=dict(function["environment"]["variables"]),
        function_timeout_seconds=int(function["timeout"]),
        mapping=MappingSettings(
            batch_size=int(mapping["batchSize"]),
            batching_window_seconds=int(mapping.get("maximumBatchingWindowInSeconds", 0)),
            maximum_retry_attempts=int(mapping["maximumRetryAttempts"]),
            maximum_record_age_seconds=int(mapping["maximumRecordAgeInSeconds"]),
            bisect_on_error=bool(mapping.get("bisectBatchOnFunctionError")),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("functionResponseTypes", []),
            starting_position=mapping["startingPosition"],
        ),
    )


def provision_stack(stack: str, endpoint_url: str, config_overrides: dict[str, object] | None = None) -> LocalPipeline:
    """Run the program for `stack` under mocks and provision what it declares."""
    return provision(run_program(stack, config_overrides=config_overrides), endpoint_url)
