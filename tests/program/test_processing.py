"""The processor function, its role, log group and the stream mapping."""

import json

import pulumi

from handler import layout
from harness.stack_config import PROJECT_DIR
from tests.program.assertions import assert_input, policy_statements

FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ACCOUNT = "123456789012"


def test_function_runs_the_handler_package_on_a_current_runtime(dev):
    function = dev.one(FUNCTION)
    assert_input(function, "name", "iot-processor-dev")
    assert_input(function, "runtime", "python3.13")
    assert_input(function, "handler", "handler.index.handler")
    assert_input(function, "role", dev.one("aws:iam/role:Role", "iot-dev-processing-role").outputs["arn"])
    assert_input(function, "kmsKeyArn", dev.one("aws:kms/key:Key").outputs["arn"])
    assert_input(function, "memorySize", 512)
    assert_input(function, "timeout", 120)


def test_function_package_holds_the_handler_folder_at_its_root(dev):
    code = dev.one(FUNCTION).inputs["code"]
    assert isinstance(code, pulumi.AssetArchive), f"code is {type(code).__name__}"
    assert list(code.assets) == ["handler"], "Lambda imports handler.index only if handler/ is at the root"
    inner = code.assets["handler"]
    # Every source of handler/ and nothing else (no caches); __init__.py makes it a regular
    # package, so nothing else named `handler` on Lambda's path can shadow it.
    sources = sorted(path.name for path in (PROJECT_DIR / "handler").glob("*.py"))
    assert {"__init__.py", "index.py"} <= set(sources), sources
    assert sorted(inner.assets) == sources, f"package holds {sorted(inner.assets)}, handler/ has {sources}"


def test_function_environment_names_the_stores(dev):
    variables = dev.one(FUNCTION).inputs["environment"]["variables"]
    assert variables[layout.ENV_METRICS_TABLE] == "sensor-metrics-dev"
    assert variables[layout.ENV_ARCHIVE_BUCKET].startswith("iot-sensor-data-dev-")
    assert variables[layout.ENV_METRICS_TTL_DAYS] == "30"
    limits = json.loads(variables[layout.ENV_SENSOR_LIMITS])
    assert limits["temperature"] == {"low": -40.0, "high": 150.0}
    assert json.loads(variables[layout.ENV_ANOMALY_SETTINGS]) == {}


def test_function_logs_json_into_its_own_encrypted_group_created_first(dev):
    function = dev.one(FUNCTION)
    group = dev.one("aws:cloudwatch/logGroup:LogGroup", "iot-dev-processing-log-group")
    assert_input(group, "name", "/aws/lambda/iot-processor-dev")
    assert_input(group, "retentionInDays", 30)
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert_input(function, "loggingConfig.logFormat", "JSON")
    assert_input(function, "loggingConfig.logGroup", "/aws/lambda/iot-processor-dev")
    assert group.urn in function.dependencies, f"{function.urn}: must wait for its log group"


def test_mapping_reports_partial_failures_bisects_and_bounds_retries(dev, prod):
    mapping = dev.one(MAPPING)
    assert_input(mapping, "eventSourceArn", dev.one("aws:kinesis/stream:Stream").outputs["arn"])
    assert_input(mapping, "functionName", dev.one(FUNCTION).outputs["arn"])
    assert_input(mapping, "startingPosition", "TRIM_HORIZON")
    assert_input(mapping, "batchSize", 500)
    assert_input(mapping, "maximumBatchingWindowInSeconds", 5)
    assert_input(mapping, "functionResponseTypes", ["ReportBatchItemFailures"])
    assert_input(mapping, "bisectBatchOnFunctionError", True)
    assert_input(mapping, "maximumRetryAttempts", 5)
    assert_input(mapping, "maximumRecordAgeInSeconds", 3600)
    assert_input(prod.one(MAPPING), "batchSize", 1000)
    assert_input(prod.one(MAPPING), "maximumRecordAgeInSeconds", 86400)


def test_mapping_sends_failed_batches_with_their_records_to_the_encrypted_archive(dev):
    mapping = dev.one(MAPPING)
    archive = dev.one("aws:s3/bucket:Bucket", "iot-dev-storage-archive-bucket")
    # An S3 destination receives the whole invocation record, records included;
    # SQS or SNS would get only the shard and sequence range.
    assert_input(mapping, "destinationConfig.onFailure.destinationArn", archive.outputs["arn"])


def test_mapping_waits_for_the_role_policy(dev):
    policy = dev.one("aws:iam/rolePolicy:RolePolicy", "iot-dev-processing-role-policy")
    assert policy.urn in dev.one(MAPPING).dependencies
    assert policy.urn in dev.one(FUNCTION).dependencies


def test_lambda_role_trusts_lambda_and_grants_exact_actions_on_exact_resources(dev):
    role = dev.one("aws:iam/role:Role", "iot-dev-processing-role")
    assert_input(role, "name", "iot-lambda-role-dev")
    trust = policy_statements(role, "assumeRolePolicy")["TrustService"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "Condition" not in trust, f"{role.urn}: Lambda cannot assume a role that requires aws:SourceAccount"
    statements = policy_statements(dev.one("aws:iam/rolePolicy:RolePolicy", "iot-dev-processing-role-policy"))
    stream_arn = dev.one("aws:kinesis/stream:Stream").outputs["arn"]
    key_arn = dev.one("aws:kms/key:Key").outputs["arn"]
    table_arn = dev.one("aws:dynamodb/table:Table").outputs["arn"]
    bucket_arn = dev.one("aws:s3/bucket:Bucket", "iot-dev-storage-archive-bucket").outputs["arn"]
    log_arn = f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:/aws/lambda/iot-processor-dev:*"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "ReadSensorStream": ([
            "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
            "kinesis:GetShardIterator", "kinesis:ListShards",
        ], [stream_arn]),
        "DecryptStreamRecords": (["kms:Decrypt"], [key_arn]),
        "UseKeyForMetricsTable": (["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        "DescribeKeyForMetricsTable": (["kms:DescribeKey"], [key_arn]),
        "UseKeyForArchive": (["kms:GenerateDataKey", "kms:Decrypt"], [key_arn]),
        "DecryptOwnEnvironment": (["kms:Decrypt"], [key_arn]),
        "StoreMetrics": (["dynamodb:BatchGetItem", "dynamodb:PutItem"], [table_arn]),
        "ArchiveReadings": (["s3:PutObject", "s3:GetObject"], [f"{bucket_arn}/raw/*", f"{bucket_arn}/quarantine/*"]),
        "ListArchiveForFailedBatches": (["s3:ListBucket"], [bucket_arn]),
        "WriteFailedBatches": (["s3:PutObject"], [f"{bucket_arn}/aws/lambda/*"]),
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], [log_arn]),
        # X-Ray's write actions take no resource: AWS documents "*" for them.
        "WriteTraces": (["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
    }


def test_lambda_role_uses_the_key_only_through_each_service_for_this_stacks_resource(dev, prod):
    for run, suffix in ((dev, "dev"), (prod, "prod")):
        statements = policy_statements(run.one("aws:iam/rolePolicy:RolePolicy", f"iot-{suffix}-processing-role-policy"))
        stream_arn = run.one("aws:kinesis/stream:Stream").outputs["arn"]
        bucket_arn = run.one("aws:s3/bucket:Bucket", f"iot-{suffix}-storage-archive-bucket").outputs["arn"]

        def via(service):
            return {"kms:ViaService": f"{service}.ap-southeast-1.amazonaws.com"}

        conditions = {sid: s.get("Condition") for sid, s in statements.items() if sid != "WriteTraces"
                      and any(action.startswith("kms:") for action in s["Action"])}
        assert conditions == {
            "DecryptStreamRecords": {"StringEquals": {
                **via("kinesis"), "kms:EncryptionContext:aws:kinesis:arn": stream_arn}},
            "UseKeyForMetricsTable": {"StringEquals": {
                **via("dynamodb"), "kms:EncryptionContext:aws:dynamodb:tableName": f"sensor-metrics-{suffix}"}},
            "DescribeKeyForMetricsTable": {"StringEquals": via("dynamodb")},
            "UseKeyForArchive": {"StringEquals": {**via("s3"), "kms:EncryptionContext:aws:s3:arn": bucket_arn}},
            "DecryptOwnEnvironment": {"StringEquals": via("lambda")},
        }, f"iot-{suffix}-processing-role-policy: kms conditions"


def test_function_traces_with_xray_by_default_and_reserves_no_concurrency(dev, prod):
    for run in (dev, prod):
        function = run.one(FUNCTION)
        assert_input(function, "tracingConfig", {"mode": "Active"})
        assert "reservedConcurrentExecutions" not in function.inputs, f"{function.urn}: reserves concurrency"


def test_tracing_pass_through_drops_the_xray_grant(program_run):
    run = program_run("dev", config_overrides={"tracing": "PassThrough"})
    assert_input(run.one(FUNCTION), "tracingConfig", {"mode": "PassThrough"})
    statements = policy_statements(run.one("aws:iam/rolePolicy:RolePolicy", "iot-dev-processing-role-policy"))
    assert "WriteTraces" not in statements


def test_reserved_concurrency_comes_from_config(program_run):
    run = program_run("dev", config_overrides={"reservedConcurrency": 20, "parallelizationFactor": 2})
    assert_input(run.one(FUNCTION), "reservedConcurrentExecutions", 20)
    assert_input(run.one(MAPPING), "parallelizationFactor", 2)
