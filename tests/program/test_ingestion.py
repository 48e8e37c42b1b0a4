"""The stream, the topic rule and its roles."""

from handler.message_format import KINESIS_PARTITION_KEY_TEMPLATE, RULE_SQL, RULE_SQL_VERSION, TOPIC_FILTER
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
    assert_input(rule, "sql", RULE_SQL)
    assert f"FROM '{TOPIC_FILTER}'" in rule.inputs["sql"]
    assert "topic(3) AS topic_device_id" in rule.inputs["sql"] and "timestamp() AS received_at" in rule.inputs["sql"]
    kinesis = rule.inputs["kineses"]
    assert len(kinesis) == 1, f"{rule.urn}: kineses = {kinesis!r}"
    assert kinesis[0]["streamName"] == "iot-sensor-stream-dev"
    assert kinesis[0]["partitionKey"] == KINESIS_PARTITION_KEY_TEMPLATE == "${topic(3)}"
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


def test_rule_roles_trust_only_iot_in_this_account(dev):
    for role_name, physical in (("iot-dev-ingestion-rule-role", "iot-rule-role-dev"),
                                ("iot-dev-ingestion-rule-error-role", "iot-rule-error-role-dev")):
        role = dev.one(ROLE, role_name)
        assert_input(role, "name", physical)
        trust = policy_statements(role, "assumeRolePolicy")["TrustService"]
        assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
        assert trust["Action"] == ["sts:AssumeRole"]
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_ingest_role_may_only_put_records_and_use_the_key(dev):
    statements = policy_statements(dev.one(ROLE_POLICY, "iot-dev-ingestion-rule-role-policy"))
    stream_arn = dev.one(STREAM).outputs["arn"]
    key_arn = dev.one("aws:kms/key:Key").outputs["arn"]
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "PutIntoSensorStream": (["kinesis:PutRecord"], [stream_arn]),
        "EncryptStreamRecords": (["kms:GenerateDataKey"], [key_arn]),
    }


def test_error_role_may_only_write_to_its_log_group(dev):
    statements = policy_statements(dev.one(ROLE_POLICY, "iot-dev-ingestion-rule-error-role-policy"))
    group_arn = "arn:aws:logs:ap-southeast-1:123456789012:log-group:/aws/iot/rules/iot-sensor-ingest-dev/errors"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "WriteRuleErrors": (
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [group_arn, f"{group_arn}:*"],
        ),
    }
