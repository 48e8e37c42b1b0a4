"""IoT Core's account-wide logging: off unless the stack asks to own it, then into its encrypted group."""

import pytest

from tests.program.assertions import assert_input, policy_statements

LOGGING = "aws:iot/loggingOptions:LoggingOptions"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def dev_with_iot_logging(program_run):
    return program_run("dev", config_overrides={"enableIotLogging": True, "iotLogLevel": "INFO"})


def test_iot_logging_is_off_by_default(dev, prod):
    for run in (dev, prod):
        assert run.of_type(LOGGING) == []
        assert [g for g in run.of_type(LOG_GROUP) if g.inputs["name"] == "AWSIotLogsV2"] == []


def test_iot_logging_when_enabled_logs_at_the_configured_level_into_its_encrypted_group(dev_with_iot_logging):
    run = dev_with_iot_logging
    logging = run.one(LOGGING)
    group = run.one(LOG_GROUP, "iot-dev-iot-logging-log-group")
    role = run.one("aws:iam/role:Role", "iot-dev-iot-logging-role")
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "iot-dev-iot-logging-role-policy")
    assert_input(logging, "defaultLogLevel", "INFO")
    assert_input(logging, "disableAllLogs", False)
    assert_input(logging, "roleArn", role.outputs["arn"])
    assert_input(group, "name", "AWSIotLogsV2")
    assert_input(group, "retentionInDays", 30)
    assert_input(group, "kmsKeyId", run.one("aws:kms/key:Key").outputs["arn"])
    assert policy.urn in logging.dependencies and group.urn in logging.dependencies, (
        f"{logging.urn}: must wait for the role's policy and the log group"
    )
    trust = policy_statements(role, "assumeRolePolicy")["TrustService"]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    group_arn = f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:AWSIotLogsV2"
    assert policy_statements(policy) == {"WriteIotLogs": {
        "Sid": "WriteIotLogs", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
        "Resource": [group_arn, f"{group_arn}:*"],
    }}


def test_iot_logging_default_level_is_warn(program_run):
    run = program_run("dev", config_overrides={"enableIotLogging": True})
    assert_input(run.one(LOGGING), "defaultLogLevel", "WARN")


def test_iot_logging_is_one_component_of_its_own(dev_with_iot_logging):
    component = dev_with_iot_logging.one("iotpipeline:index:IotLogging", "iot-dev-iot-logging")
    children = sorted(r.type for r in dev_with_iot_logging.resources if r.parent == component.urn)
    assert children == sorted([LOGGING, LOG_GROUP, "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"]), children
