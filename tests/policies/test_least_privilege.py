"""Least-privilege policies: the exact fixtures each fails."""

import pytest

from tests.policies.conftest import UNKNOWN, PolicyCases, allow, check_policy_cases, doc, fails, passes

ROOT = {"AWS": "arn:aws:iam::123456789012:root"}
LOGS = {"Service": "logs.ap-southeast-1.amazonaws.com"}
OWN_CLIENT = "arn:aws:iot:ap-southeast-1:123456789012:client/${iot:Connection.Thing.ThingName}"
OWN_TOPIC = "arn:aws:iot:ap-southeast-1:123456789012:topic/factory/telemetry/${iot:Connection.Thing.ThingName}"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"

CASES = [
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
