"""The processor: the Lambda function, its log group and role, and the mapping that feeds it
from the stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import service_role, statement
from components.log_groups import encrypted_log_group
from handler import layout

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"
LAMBDA_RUNTIME = "python3.13"
# X-Ray's write actions authorize on no resource: AWS documents Resource "*" for them
# (the one wildcard resource in the stack's roles, and the pack's allowed list says so).
XRAY_WRITE_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


def function_name(suffix: str) -> str:
    return f"iot-processor-{suffix}"


def function_log_group_name(suffix: str) -> str:
    return f"/aws/lambda/{function_name(suffix)}"


def handler_archive() -> pulumi.AssetArchive:
    """The `handler/` folder itself at the archive's root, so Lambda imports
    `handler.index.handler`; only the Python sources, so the package is the same
    whatever caches lie in the working tree."""
    sources: dict[str, pulumi.Asset | pulumi.Archive] = {
        path.name: pulumi.FileAsset(str(path)) for path in sorted(HANDLER_DIR.glob("*.py"))}
    return pulumi.AssetArchive({"handler": pulumi.AssetArchive(sources)})


@dataclass
class ProcessingArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    stream_arn: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    archive_bucket_name: pulumi.Input[str]
    archive_bucket_arn: pulumi.Input[str]
    log_retention_days: int
    memory_mb: int
    timeout_seconds: int
    batch_size: int
    batching_window_seconds: int
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    parallelization_factor: int
    # X-Ray: "Active" samples and traces every invocation; "PassThrough" only traces
    # what an upstream service asked to (a Kinesis mapping never does).
    tracing_mode: str
    # None: the function shares the account's unreserved concurrency.
    reserved_concurrency: Optional[int]
    metrics_ttl_days: int
    sensor_limits_json: str
    anomaly_settings: Mapping[str, float]


class Processing(pulumi.ComponentResource):
    """Runs handler/ on every batch from the stream.

    The mapping reports partial batch failures, bisects a failing batch, gives
    up after bounded retries or a maximum age, and then writes the whole
    invocation record (the failed records included) to the archive bucket,
    encrypted with the stack's key, so failed records outlive the stream.
    """

    function: aws.lambda_.Function
    log_group: aws.cloudwatch.LogGroup
    mapping: aws.lambda_.EventSourceMapping

    def __init__(self, name: str, args: ProcessingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Processing", name, None, opts)
        name_of_function = function_name(args.context.suffix)
        log_group_name = function_log_group_name(args.context.suffix)
        # Created before the function: otherwise Lambda creates an unencrypted
        # group that never expires on the first invocation.
        self.log_group = encrypted_log_group(
            f"{name}-log-group",
            name=log_group_name,
            retention_days=args.log_retention_days,
            kms_key_arn=args.kms_key_arn,
            context=args.context,
            parent=self,
        )
        role, role_policy = self._create_role(name, name_of_function, log_group_name, args)
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=name_of_function,
            description="Validates sensor readings, detects anomalies, stores metrics and raw data",
            runtime=LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler="handler.index.handler",
            code=handler_archive(),
            role=role.arn,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            kms_key_arn=args.kms_key_arn,
            environment={"variables": self._environment(args)},
            logging_config={
                "log_format": "JSON",
                "log_group": self.log_group.name,
                "application_log_level": "INFO",
                "system_log_level": "WARN",
            },
            tracing_config={"mode": args.tracing_mode},
            # Unset (None) unless configured: a reservation fails on accounts whose concurrency
            # quota is low, and one below shards x parallelization factor throttles the mapping.
            reserved_concurrent_executions=args.reserved_concurrency,
            tags=args.context.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, role_policy]),
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-stream-mapping",
            event_source_arn=args.stream_arn,
            function_name=self.function.arn,
            # From the oldest record, so nothing published between the stream's
            # and the mapping's creation is skipped.
            starting_position="TRIM_HORIZON",
            batch_size=args.batch_size,
            maximum_batching_window_in_seconds=args.batching_window_seconds,
            parallelization_factor=args.parallelization_factor,
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=args.maximum_retry_attempts,
            maximum_record_age_in_seconds=args.maximum_record_age_seconds,
            destination_config={"on_failure": {"destination_arn": args.archive_bucket_arn}},
            # Publishes the records sent to the on-failure destination, dropped and
            # polled (components/alarms.py alarms on them); off unless asked for.
            metrics_config={"metrics": ["EventCount"]},
            tags=args.context.tags,
            # The mapping's first poll needs the role's stream permissions in force.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.register_outputs({"functionName": self.function.name, "mappingUuid": self.mapping.uuid})

    @staticmethod
    def _environment(args: ProcessingArgs) -> dict[str, pulumi.Input[str]]:
        return {
            layout.ENV_METRICS_TABLE: args.table_name,
            layout.ENV_ARCHIVE_BUCKET: args.archive_bucket_name,
            layout.ENV_METRICS_TTL_DAYS: str(args.metrics_ttl_days),
            layout.ENV_SENSOR_LIMITS: args.sensor_limits_json,
            layout.ENV_ANOMALY_SETTINGS: json.dumps(dict(args.anomaly_settings), sort_keys=True),
            layout.ENV_METRICS_NAMESPACE: layout.METRICS_NAMESPACE,
        }

    def _create_role(
        self, name: str, name_of_function: str, log_group_name: str, args: ProcessingArgs
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        context = args.context
        log_streams_arn = context.arn("logs", f"log-group:{log_group_name}:*")

        def bucket_objects(prefix: str) -> pulumi.Output[str]:
            return pulumi.Output.concat(args.archive_bucket_arn, "/", prefix, "/*")

        def through(service: str, **encryption_context: pulumi.Input[str]) -> dict:
            """The key only through `service` in this region, for this stack's resource: the
            encryption context the service sends names it."""
            return {"StringEquals": {
                "kms:ViaService": pulumi.Output.format("{0}.{1}.amazonaws.com", service, context.region),
                **{f"kms:EncryptionContext:{key}": value for key, value in encryption_context.items()},
            }}

        statements = [
            statement(
                "ReadSensorStream",
                [
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                [args.stream_arn],
            ),
            # The key, each time only through the service that holds the data, for this
            # stack's stream, table or bucket; never for a direct call or another resource.
            statement("DecryptStreamRecords", ["kms:Decrypt"], [args.kms_key_arn],
                      condition=through("kinesis", **{"aws:kinesis:arn": args.stream_arn})),
            # DynamoDB decrypts the table key for the caller (and checks the key with
            # DescribeKey, which carries no encryption context).
            statement("UseKeyForMetricsTable", ["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn],
                      condition=through("dynamodb", **{"aws:dynamodb:tableName": args.table_name})),
            statement("DescribeKeyForMetricsTable", ["kms:DescribeKey"], [args.kms_key_arn],
                      condition=through("dynamodb")),
            # With a bucket key S3's encryption context is the bucket ARN, not the object's:
            # GenerateDataKey for new objects (readings, quarantine, failed batches),
            # Decrypt for a retry's reads of its own objects and for multipart uploads.
            statement("UseKeyForArchive", ["kms:GenerateDataKey", "kms:Decrypt"], [args.kms_key_arn],
                      condition=through("s3", **{"aws:s3:arn": args.archive_bucket_arn})),
            # The function's environment is encrypted with the key; Lambda decrypts it for
            # this role (through its grant, and through this if the grant is ever missing).
            statement("DecryptOwnEnvironment", ["kms:Decrypt"], [args.kms_key_arn], condition=through("lambda")),
            # Writes are conditional puts inside TransactWriteItems, which IAM authorizes
            # as dynamodb:PutItem per item (there is no TransactWriteItems action).
            statement(
                "StoreMetrics",
                ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
                [args.table_arn],
            ),
            # GetObject: a retry reads the objects an earlier attempt of its batch wrote
            # (docs/processor.md); with ListBucket below, a missing key is a 404, not a 403.
            statement(
                "ArchiveReadings",
                ["s3:PutObject", "s3:GetObject"],
                [bucket_objects(layout.RAW_PREFIX), bucket_objects(layout.QUARANTINE_PREFIX)],
            ),
            # The mapping's on-failure destination writes with this role,
            # under Lambda's own key layout.
            statement("ListArchiveForFailedBatches", ["s3:ListBucket"], [args.archive_bucket_arn]),
            statement("WriteFailedBatches", ["s3:PutObject"], [bucket_objects(layout.LAMBDA_FAILURE_PREFIX)]),
            statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_streams_arn]),
        ]
        if args.tracing_mode == "Active":
            # Resource "*": AWS documents no resource-level permission for X-Ray's writes.
            statements.append(statement("WriteTraces", list(XRAY_WRITE_ACTIONS), "*"))
        return service_role(
            f"{name}-role",
            role_name=f"iot-lambda-role-{context.suffix}",
            service="lambda.amazonaws.com",
            context=context,
            # Lambda assumes an execution role without the aws:SourceAccount
            # key; AWS documents the plain service trust for it.
            restrict_to_account=False,
            description=f"Execution role of {name_of_function}",
            statements=statements,
            parent=self,
        )
