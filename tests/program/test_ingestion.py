"""The stream, the topic rule and its roles."""

from handler.message_format import KINESIS_PARTITION_KEY_TEMPLATE, RULE_SQL_VERSION, rule_sql
from tests.program.assertions import assert_input, policy_statements

STREAM = "aws:kinesis/stream:Stream"
RULE = "aws:iot/topicRule:TopicRule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def test_stream_is_on_demand_kms_encrypted_with_24_hours_retention(dev, prod):
    stream = dev.one(STREAM)
    assert_input(stream, "name", "iot-sensor-stream-dev")
    assert_input(stream, "streamModeDetails", {"streamMode": "ON_DEMAND"})
    assert "shardCount" not in stream.inputs, f"{stream.urn}: on-demand streams take no shardCount"
    assert_input(stream, "retentionPeriod", 24)
    assert_input(stream, "encryptionType", "KMS")
    assert_input(stream, "kmsKeyId", dev.one("aws:kms/key:Key").outputs["arn"])
    assert_input(prod.one(STREAM), "retentionPeriod", 168)


def test_rule_routes_telemetry_into_the_stream_by_device(dev):
    rule = dev.one(RULE)
    assert_input(rule, "name", "iot_sensor_ingest_dev")
    assert_input(rule, "enabled", True)
    assert_input(rule, "sqlVersion", RULE_SQL_VERSION)
    assert_input(rule, "sql", rule_sql("dev"))
    assert_input(rule, "sql", "SELECT *, topic(4) AS topic_device_id, timestamp() AS received_at "
                              "FROM 'factory/dev/telemetry/+'")
    kinesis = rule.inputs["kineses"]
    assert len(kinesis) == 1, f"{rule.urn}: kineses = {kinesis!r}"
    assert kinesis[0]["streamName"] == "iot-sensor-stream-dev"
    assert kinesis[0]["partitionKey"] == KINESIS_PARTITION_KEY_TEMPLATE == "${topic(4)}"
    assert kinesis[0]["roleArn"] == dev.one(ROLE, "iot-dev-ingestion-rule-role").outputs["arn"]


def test_rule_keeps_failed_deliveries_in_its_encrypted_log_group(dev):
    rule = dev.one(RULE)
    group = dev.one("aws:cloudwatch/logGroup:LogGroup", "iot-dev-ingestion-rule-errors")
    assert_input(rule, "errorAction.cloudwatchLogs.logGroupName", group.inputs["name"])
    assert_input(rule, "errorAction.cloudwatchLogs.roleArn", dev.one(ROLE, "iot-dev-ingestion-rule-error-role").outputs["arn"])
    assert_input(group, "retentionInDays", 30)
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_rule_waits_for_its_roles_policies(dev):
    rule = dev.one(RULE)
    for policy_name in ("iot-dev-ingestion-rule-role-policy", "iot-dev-ingestion-rule-error-role-policy"):
        assert dev.one(ROLE_POLICY, policy_name).urn in rule.dependencies, f"{rule.urn}: no depends_on {policy_name}"


def test_prod_rule_selects_only_prods_namespace(prod):
    rule = prod.one(RULE)
    assert_input(rule, "name", "iot_sensor_ingest_prod")
    assert_input(rule, "sql", "SELECT *, topic(4) AS topic_device_id, timestamp() AS received_at "
                              "FROM 'factory/prod/telemetry/+'")


def test_rule_roles_trust_only_iot_acting_for_this_rule(dev, prod):
    for run, suffix in ((dev, "dev"), (prod, "prod")):
        for role_name, physical in ((f"iot-{suffix}-ingestion-rule-role", f"iot-rule-role-{suffix}"),
                                    (f"iot-{suffix}-ingestion-rule-error-role", f"iot-rule-error-role-{suffix}")):
            role = run.one(ROLE, role_name)
            assert_input(role, "name", physical)
            trust = policy_statements(role, "assumeRolePolicy")["TrustService"]
            assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
            assert trust["Action"] == ["sts:AssumeRole"]
            assert trust["Condition"] == {
                "StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnEquals": {"aws:SourceArn": f"arn:aws:iot:ap-southeast-1:123456789012:rule/iot_sensor_ingest_{suffix}"},
            }, f"{role.urn}: assumeRolePolicy condition"


def test_ingest_role_may_only_put_records_and_use_the_key(dev):
    statements = policy_statements(dev.one(ROLE_POLICY, "iot-dev-ingestion-rule-role-policy"))
    stream_arn = dev.one(STREAM).outputs["arn"]
    key_arn = dev.one("aws:kms/key:Key").outputs["arn"]
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "PutIntoSensorStream": (["kinesis:PutRecord"], [stream_arn]),
        "EncryptStreamRecords": (["kms:GenerateDataKey"], [key_arn]),
    }
    assert statements["EncryptStreamRecords"]["Condition"] == {"StringEquals": {
        "kms:ViaService": "kinesis.ap-southeast-1.amazonaws.com", "kms:EncryptionContext:aws:kinesis:arn": stream_arn,
    }}


def test_error_role_may_only_write_to_its_log_group(dev):
    statements = policy_statements(dev.one(ROLE_POLICY, "iot-dev-ingestion-rule-error-role-policy"))
    group_arn = "arn:aws:logs:ap-southeast-1:123456789012:log-group:/aws/iot/rules/iot-sensor-ingest-dev/errors"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "WriteRuleErrors": (
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [group_arn, f"{group_arn}:*"],
        ),
    }
