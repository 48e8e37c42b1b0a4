"""Least-privilege policies: the exact fixtures each fails."""

import pytest

from tests.policies.conftest import UNKNOWN, PolicyCases, allow, check_policy_cases, doc, fails, passes

ROOT = {"AWS": "arn:aws:iam::123456789012:root"}
LOGS = {"Service": "logs.ap-southeast-1.amazonaws.com"}
OWN_CLIENT = "arn:aws:iot:ap-southeast-1:123456789012:client/${iot:Connection.Thing.ThingName}"
OWN_TOPIC = "arn:aws:iot:ap-southeast-1:123456789012:topic/factory/telemetry/${iot:Connection.Thing.ThingName}"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"

ACCOUNT = "123456789012"
CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
CLOUDTRAIL = {"Service": "cloudtrail.amazonaws.com"}
LOGS_ARN = "kms:EncryptionContext:aws:logs:arn"
TRAIL_CONTEXT = "kms:EncryptionContext:aws:cloudtrail:arn"
OWN_GROUP = f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:/aws/lambda/iot-processor-dev"
OWN_ALARMS = f"arn:aws:cloudwatch:ap-southeast-1:{ACCOUNT}:alarm:iot-pipeline-*_dev"
OWN_TRAIL = f"arn:aws:cloudtrail:ap-southeast-1:{ACCOUNT}:trail/iot-audit-trail-dev"


def service_grant(principal, condition=None, actions=("kms:Decrypt", "kms:GenerateDataKey")):
    extra = {"Condition": condition} if condition is not None else {}
    return {"policy": doc(allow(list(actions), "*", Principal=principal, Sid="ServiceUsesKey", **extra))}


CASES = [
    PolicyCases("kms-key-policy-service-scoped", "aws:kms/key:Key", [
        passes("own-log-groups", service_grant(LOGS, {"ArnLike": {LOGS_ARN: [
            OWN_GROUP, f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:/aws/cloudtrail/iot-audit-trail-dev"]}})),
        passes("own-alarms", service_grant(CLOUDWATCH, {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                                        "ArnLike": {"aws:SourceArn": OWN_ALARMS}})),
        # CloudTrail's documented context pattern, pinned by aws:SourceArn of the one trail (keys are ANDed).
        passes("trail-pinned-by-source-arn", service_grant(CLOUDTRAIL, {
            "StringLike": {TRAIL_CONTEXT: f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"},
            "StringEquals": {"aws:SourceArn": OWN_TRAIL}}, actions=["kms:GenerateDataKey"])),
        passes("no-condition-no-pattern", service_grant(CLOUDTRAIL, actions=["kms:DescribeKey"])),
        passes("account-root", {"policy": doc(allow(["kms:*"], "*", Principal=ROOT, Sid="Admin"))}),
        passes("bucket-objects", service_grant({"Service": "s3.amazonaws.com"},
                                               {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::iot-sensor-data-dev-*"}})),
        passes("unknown", {"policy": UNKNOWN}),
        fails("every-log-group", service_grant(LOGS, {"ArnLike": {LOGS_ARN: f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:*"}})),
        fails("every-alarm", service_grant(CLOUDWATCH, {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                                        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:ap-southeast-1:{ACCOUNT}:alarm:*"}})),
        fails("every-trail", service_grant(CLOUDTRAIL, {"StringLike": {TRAIL_CONTEXT: f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}},
                                           actions=["kms:GenerateDataKey"])),
        fails("own-and-every-log-group", service_grant(LOGS, {"ArnLike": {LOGS_ARN: [
            OWN_GROUP, f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:*"]}})),
        fails("any-account", service_grant(LOGS, {"ArnLike": {LOGS_ARN: "arn:aws:logs:ap-southeast-1:*:log-group:/aws/lambda/x"}})),
        fails("every-resource-of-the-service", service_grant(LOGS, {"ArnLike": {LOGS_ARN: f"arn:aws:logs:*:{ACCOUNT}:*"}})),
        fails("every-bucket", service_grant({"Service": "s3.amazonaws.com"}, {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}})),
        # IfExists is true when the key is absent: it pins nothing.
        fails("pinned-only-if-present", service_grant(CLOUDWATCH, {
            "ArnLikeIfExists": {"aws:SourceArn": OWN_ALARMS},
            "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:ap-southeast-1:{ACCOUNT}:alarm:*"}})),
    ]),
    PolicyCases("kms-key-policy-service-scoped", "aws:kms/keyPolicy:KeyPolicy", [
        passes("own-log-group", service_grant(LOGS, {"ArnEquals": {LOGS_ARN: OWN_GROUP}}) | {"keyId": "k"}),
        fails("every-log-group", service_grant(LOGS, {"ArnLike": {LOGS_ARN: f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:*"}}) | {"keyId": "k"}),
    ]),
    PolicyCases("iam-policy-no-wildcard-action", "aws:iam/rolePolicy:RolePolicy", [
        passes("exact", {"policy": doc(allow(["s3:PutObject"]))}),
        passes("unknown", {"policy": UNKNOWN}),
        passes("deny-star", {"policy": doc({"Sid": "D", "Effect": "Deny", "Action": "s3:*", "Resource": "*"})}),
        fails("star", {"policy": doc(allow(["*"]))}),
        fails("service-star", {"policy": doc(allow(["s3:*"]))}),
        fails("suffix", {"policy": doc(allow(["kms:GenerateDataKey*"]))}),
        fails("action-string", {"policy": doc({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})}),
        fails("not-action", {"policy": doc({"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}),
    ]),
    PolicyCases("iam-policy-no-wildcard-action", "aws:iam/policy:Policy", [
        fails("managed-star", {"policy": doc(allow(["kinesis:*"]))}),
    ]),
    PolicyCases("iam-policy-no-wildcard-action", "aws:iam/role:Role", [
        passes("trust", {"assumeRolePolicy": doc(allow(["sts:AssumeRole"], [], Principal={"Service": "x"}))}),
        fails("inline-star", {"inlinePolicies": [{"name": "i", "policy": doc(allow(["s3:*"]))}]}),
    ]),
    PolicyCases("iot-policy-no-wildcard-action", "aws:iot/policy:Policy", [
        passes("exact", {"policy": doc(allow(["iot:Publish"], [OWN_TOPIC]))}),
        fails("star", {"policy": doc(allow(["iot:*"], [OWN_TOPIC]))}),
    ]),
    PolicyCases("kms-key-policy-no-wildcard-action", "aws:kms/key:Key", [
        passes("root-administers", {"policy": doc(allow(["kms:*"], "*", Principal=ROOT))}),
        passes("service-exact", {"policy": doc(allow(["kms:Decrypt"], "*", Principal=LOGS))}),
        fails("service-star", {"policy": doc(allow(["kms:*"], "*", Principal=LOGS))}),
        fails("service-suffix", {"policy": doc(allow(["kms:GenerateDataKey*"], "*", Principal=LOGS))}),
        fails("role-star", {"policy": doc(allow(["kms:*"], "*", Principal={"AWS": "arn:aws:iam::1:role/r"}))}),
    ]),
    PolicyCases("aws-resource-policy-no-wildcard-action", "aws:sns/topicPolicy:TopicPolicy", [
        passes("exact", {"policy": doc(allow(["sns:Publish"], Principal={"Service": "cloudwatch.amazonaws.com"}))}),
        fails("star", {"policy": doc(allow(["SNS:*"], Principal={"Service": "cloudwatch.amazonaws.com"}))}),
    ]),
    PolicyCases("aws-resource-policy-no-wildcard-action", "aws:s3/bucketPolicy:BucketPolicy", [
        passes("tls-deny", {"policy": doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"})}),
        fails("allow-star", {"policy": doc(allow(["s3:*"], Principal={"Service": "x.amazonaws.com"}))}),
    ]),
    PolicyCases("iam-policy-no-wildcard-resource", "aws:iam/rolePolicy:RolePolicy", [
        passes("scoped", {"policy": doc(allow(["s3:PutObject"], ["arn:aws:s3:::b/*"]))}),
        passes("resourceless-action", {"policy": doc(allow(["cloudwatch:PutMetricData"], "*"))}),
        fails("star", {"policy": doc(allow(["s3:PutObject"], "*"))}),
        fails("star-in-list", {"policy": doc(allow(["dynamodb:PutItem"], ["arn:aws:dynamodb:r:1:table/t", "*"]))}),
        fails("not-resource", {"policy": doc({"Effect": "Allow", "Action": ["s3:GetObject"],
                                              "NotResource": ["arn:aws:s3:::b/*"]})}),
    ]),
    PolicyCases("iam-policy-attachment-no-admin-managed-policy",
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment", [
        passes("read-only", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        passes("own-policy", {"role": "r", "policyArn": "arn:aws:iam::123456789012:policy/AdministratorAccess"}),
        passes("unknown", {"role": "r", "policyArn": UNKNOWN}),
        fails("administrator", {"role": "r", "policyArn": ADMIN}),
        fails("power-user", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}),
        fails("full-access", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}),
    ]),
    PolicyCases("iam-policy-attachment-no-admin-managed-policy", "aws:iam/role:Role", [
        fails("managed-arns", {"managedPolicyArns": [ADMIN]}),
    ]),
    PolicyCases("iot-policy-thing-scoped", "aws:iot/policy:Policy", [
        passes("own-client-and-topic", {"policy": doc(allow(["iot:Connect"], [OWN_CLIENT]),
                                                      allow(["iot:Publish"], [OWN_TOPIC]))}),
        passes("unknown", {"policy": UNKNOWN}),
        fails("any-client", {"policy": doc(allow(["iot:Connect"], ["arn:aws:iot:r:1:client/*"]))}),
        fails("any-topic", {"policy": doc(allow(["iot:Publish"], ["arn:aws:iot:r:1:topic/factory/*"]))}),
        fails("everything", {"policy": doc(allow(["iot:*"], "*"))}),
    ]),
    PolicyCases("kms-key-lockout-safety-check", "aws:kms/key:Key", [
        passes("default", {"enableKeyRotation": True}),
        fails("bypassed", {"bypassPolicyLockoutSafetyCheck": True}),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)
