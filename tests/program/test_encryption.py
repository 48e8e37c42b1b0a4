"""The stack's KMS key: rotation, spec, alias, and a key policy the services can use."""

from fnmatch import fnmatchcase

import pytest

from tests.program.assertions import assert_input, policy_statements

KEY = "aws:kms/key:Key"
ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
TRAIL_ARN = "arn:aws:cloudtrail:ap-southeast-1:123456789012:trail/iot-audit-trail-dev"


def test_key_is_symmetric_with_rotation_and_a_deletion_window(dev, prod):
    key = dev.one(KEY)
    assert_input(key, "enableKeyRotation", True)
    assert_input(key, "customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    assert_input(key, "keyUsage", "ENCRYPT_DECRYPT")
    assert_input(key, "deletionWindowInDays", 7)
    assert_input(prod.one(KEY), "deletionWindowInDays", 30)


def test_alias_names_the_environment_and_targets_the_key(dev):
    alias = dev.one("aws:kms/alias:Alias")
    assert_input(alias, "name", "alias/iot-manufacturing-dev")
    assert_input(alias, "targetKeyId", dev.one(KEY).outputs["keyId"])


def test_key_policy_keeps_account_administration(dev):
    statements = policy_statements(dev.one(KEY))
    admin = statements["AccountAdministration"]
    assert admin["Principal"] == {"AWS": ACCOUNT_ROOT}
    assert admin["Action"] == ["kms:*"]
    assert admin["Effect"] == "Allow"


def test_key_policy_lets_only_this_trail_encrypt(dev):
    statements = policy_statements(dev.one(KEY))
    encrypt = statements["CloudTrailEncryptsLogs"]
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Action"] == ["kms:GenerateDataKey"]
    assert encrypt["Condition"] == {
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:123456789012:trail/*"},
        "StringEquals": {"aws:SourceArn": TRAIL_ARN},
    }
    describe = statements["CloudTrailDescribesKey"]
    assert describe["Action"] == ["kms:DescribeKey"]
    assert describe["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert "Condition" not in describe
    decrypt = statements["AccountReadsTrailLogs"]
    assert decrypt["Action"] == ["kms:Decrypt"]
    assert decrypt["Condition"] == {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}}


LOGS_ARN = "arn:aws:logs:ap-southeast-1:123456789012:log-group:"


@pytest.fixture(scope="module")
def dev_with_iot_logging(program_run):
    return program_run("dev", config_overrides={"enableIotLogging": True})


def _logs_statement(run):
    return policy_statements(run.one(KEY))["CloudWatchLogsEncryptsLogGroups"]


def test_key_policy_lets_cloudwatch_logs_encrypt_only_this_stacks_log_groups(dev, prod, dev_with_iot_logging):
    logs = _logs_statement(dev)
    assert logs["Principal"] == {"Service": "logs.ap-southeast-1.amazonaws.com"}
    assert sorted(logs["Action"]) == sorted([
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
        "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    ])
    assert logs["Resource"] == "*"
    assert list(logs["Condition"]) == ["ArnEquals"]
    granted = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert {f"{LOGS_ARN}/aws/lambda/iot-processor-dev", f"{LOGS_ARN}/aws/iot/rules/iot-sensor-ingest-dev/errors"} <= set(granted)
    assert f"{LOGS_ARN}AWSIotLogsV2" not in granted
    assert f"{LOGS_ARN}AWSIotLogsV2" in _logs_statement(dev_with_iot_logging)["Condition"]["ArnEquals"][
        "kms:EncryptionContext:aws:logs:arn"]
    # Exactly the groups the stack declares: a new group without a grant could not be
    # encrypted, a grant without a group would let the key serve another group.
    for run in (dev, prod, dev_with_iot_logging):
        declared = sorted(LOGS_ARN + group.inputs["name"] for group in run.of_type("aws:cloudwatch/logGroup:LogGroup"))
        named = _logs_statement(run)["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        assert sorted(named) == declared, f"{run.one(KEY).urn}: policy CloudWatchLogsEncryptsLogGroups"
        assert not any("*" in arn for arn in named)


def test_key_policy_lets_only_this_stacks_alarms_publish_to_the_encrypted_topic(dev, prod):
    for run, suffix in ((dev, "dev"), (prod, "prod")):
        alarms = policy_statements(run.one(KEY))["CloudWatchAlarmsPublishEncrypted"]
        assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
        pattern = f"arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:iot-pipeline-*_{suffix}"
        assert alarms["Condition"]["ArnLike"] == {"aws:SourceArn": pattern}
    # Every alarm of a stack is covered by its own pattern and by no other stack's.
    for run, other in ((dev, prod), (prod, dev)):
        mine = policy_statements(run.one(KEY))["CloudWatchAlarmsPublishEncrypted"]["Condition"]["ArnLike"]["aws:SourceArn"]
        theirs = policy_statements(other.one(KEY))["CloudWatchAlarmsPublishEncrypted"]["Condition"]["ArnLike"][
            "aws:SourceArn"]
        for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            arn = f"arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:{alarm.inputs['name']}"
            assert fnmatchcase(arn, mine), f"{alarm.urn}: not covered by {mine}"
            assert not fnmatchcase(arn, theirs), f"{alarm.urn}: covered by the other stack's {theirs}"


def test_key_policy_names_no_pipeline_role(dev):
    # Roles get their key use from their IAM policies; naming them here would
    # make the key depend on roles that do not exist yet.
    text = dev.one(KEY).inputs["policy"]
    assert ":role/" not in text, f"{dev.one(KEY).urn}: policy names a role"
