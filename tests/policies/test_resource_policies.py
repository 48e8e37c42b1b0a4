"""Every resource policy on fixtures: the exact set of resources it fails, including
first-preview fixtures whose ARNs are unknown."""

import json

import pytest

from tests.policies.conftest import UNKNOWN, failing, fixture

KEY = "arn:aws:kms:ap-southeast-1:123456789012:key/1234"
TAGS = {"Project": "p", "Environment": "dev", "ManagedBy": "pulumi", "Owner": "o", "CostCenter": "c"}


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources=("arn:aws:s3:::b",), **extra):
    return {"Sid": extra.pop("Sid", "S"), "Effect": "Allow", "Action": list(actions), "Resource": list(resources),
            **extra}


CASES = {
    "kinesis-stream-customer-managed-key": ("aws:kinesis/stream:Stream", {
        "good": ({"encryptionType": "KMS", "kmsKeyId": KEY}, False),
        "unknown-key": ({"encryptionType": "KMS", "kmsKeyId": UNKNOWN}, False),
        "no-encryption": ({}, True),
        "no-key": ({"encryptionType": "KMS"}, True),
        "aws-managed": ({"encryptionType": "KMS", "kmsKeyId": "alias/aws/kinesis"}, True),
        "none-type": ({"encryptionType": "NONE", "kmsKeyId": KEY}, True),
    }),
    "dynamodb-table-customer-managed-key": ("aws:dynamodb/table:Table", {
        "good": ({"serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY}}, False),
        "unknown-key": ({"serverSideEncryption": {"enabled": True, "kmsKeyArn": UNKNOWN}}, False),
        "aws-owned": ({}, True),
        "aws-managed": ({"serverSideEncryption": {"enabled": True}}, True),
        "disabled": ({"serverSideEncryption": {"enabled": False, "kmsKeyArn": KEY}}, True),
    }),
    "s3-bucket-customer-managed-key": (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", {
            "good": ({"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                        "kmsMasterKeyId": KEY},
                                 "bucketKeyEnabled": True}]}, False),
            "unknown-key": ({"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                               "kmsMasterKeyId": UNKNOWN},
                                        "bucketKeyEnabled": True}]}, False),
            "sse-s3": ({"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                                   "bucketKeyEnabled": True}]}, True),
            "aws-managed": ({"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"},
                                        "bucketKeyEnabled": True}]}, True),
            "no-bucket-key": ({"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                                 "kmsMasterKeyId": KEY}}]}, True),
        }),
    "s3-bucket-inline-customer-managed-key": ("aws:s3/bucket:Bucket", {
        "no-inline": ({"bucketPrefix": "b-"}, False),
        "inline-kms": ({"serverSideEncryptionConfiguration": {"rule": {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY},
            "bucketKeyEnabled": True}}}, False),
        "inline-aes": ({"serverSideEncryptionConfiguration": {"rule": {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}}, True),
    }),
    "cloudwatch-log-group-customer-managed-key": ("aws:cloudwatch/logGroup:LogGroup", {
        "good": ({"kmsKeyId": KEY}, False), "unknown": ({"kmsKeyId": UNKNOWN}, False), "none": ({}, True),
    }),
    "sqs-queue-customer-managed-key": ("aws:sqs/queue:Queue", {
        "good": ({"kmsMasterKeyId": KEY}, False), "sqs-managed": ({"sqsManagedSseEnabled": True}, True),
        "aws-managed": ({"kmsMasterKeyId": "alias/aws/sqs"}, True),
    }),
    "sns-topic-customer-managed-key": ("aws:sns/topic:Topic", {
        "good": ({"kmsMasterKeyId": KEY}, False), "none": ({}, True),
        "aws-managed": ({"kmsMasterKeyId": "alias/aws/sns"}, True),
    }),
    "cloudtrail-trail-customer-managed-key": ("aws:cloudtrail/trail:Trail", {
        "good": ({"kmsKeyId": KEY}, False), "none": ({}, True),
    }),
    "lambda-function-environment-customer-managed-key": ("aws:lambda/function:Function", {
        "good": ({"environment": {"variables": {"A": "1"}}, "kmsKeyArn": KEY}, False),
        "no-variables": ({}, False),
        "default-key": ({"environment": {"variables": {"A": "1"}}}, True),
    }),
    "kms-key-rotation-enabled": ("aws:kms/key:Key", {
        "good": ({"enableKeyRotation": True}, False), "off": ({"enableKeyRotation": False}, True),
        "unset": ({}, True), "asymmetric": ({"customerMasterKeySpec": "RSA_2048"}, False),
    }),
    "cloudwatch-log-group-retention": ("aws:cloudwatch/logGroup:LogGroup", {
        "good": ({"retentionInDays": 30}, False), "forever": ({}, True), "invalid": ({"retentionInDays": 45}, True),
        "too-short": ({"retentionInDays": 1}, True), "unknown": ({"retentionInDays": UNKNOWN}, False),
    }),
    "kinesis-stream-retention-minimum": ("aws:kinesis/stream:Stream", {
        "default": ({}, False), "week": ({"retentionPeriod": 168}, False),
    }),
    "s3-bucket-versioning-enabled": ("aws:s3/bucketVersioning:BucketVersioning", {
        "good": ({"versioningConfiguration": {"status": "Enabled"}}, False),
        "suspended": ({"versioningConfiguration": {"status": "Suspended"}}, True),
    }),
    "s3-bucket-lifecycle-archive-transition": ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", {
        "good": ({"rules": [{"status": "Enabled", "transitions": [{"days": 90, "storageClass": "GLACIER"}]}]}, False),
        "late": ({"rules": [{"status": "Enabled", "transitions": [{"days": 400, "storageClass": "GLACIER"}]}]}, True),
        "disabled": ({"rules": [{"status": "Disabled", "transitions": [{"days": 90, "storageClass": "GLACIER"}]}]}, True),
        "ia-only": ({"rules": [{"status": "Enabled", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]}]}, True),
    }),
    "dynamodb-table-point-in-time-recovery": ("aws:dynamodb/table:Table", {
        "good": ({"pointInTimeRecovery": {"enabled": True}}, False), "off": ({}, True),
    }),
    "kms-key-deletion-window-minimum": ("aws:kms/key:Key", {
        "default": ({}, False), "minimum": ({"deletionWindowInDays": 7}, False),
    }),
    "aws-resource-required-tags": ("aws:dynamodb/table:Table", {
        "good": ({"tags": TAGS}, False), "untagged": ({}, True),
        "missing-owner": ({"tags": {k: v for k, v in TAGS.items() if k != "Owner"}}, True),
        "empty-value": ({"tags": {**TAGS, "Owner": ""}}, True), "unknown-tags": ({"tags": UNKNOWN}, False),
    }),
    "iam-policy-no-wildcard-action": ("aws:iam/rolePolicy:RolePolicy", {
        "good": ({"policy": doc(allow(["s3:PutObject"]))}, False),
        "unknown": ({"policy": UNKNOWN}, False),
        "star": ({"policy": doc(allow(["*"]))}, True),
        "service-star": ({"policy": doc(allow(["s3:*"]))}, True),
        "suffix": ({"policy": doc(allow(["kms:GenerateDataKey*"]))}, True),
        "not-action": ({"policy": doc({"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}, True),
        "deny-star": ({"policy": doc({"Sid": "D", "Effect": "Deny", "Action": "s3:*", "Resource": "*"})}, False),
    }),
    "iot-policy-no-wildcard-action": ("aws:iot/policy:Policy", {
        "good": ({"policy": doc(allow(["iot:Publish"]))}, False), "star": ({"policy": doc(allow(["iot:*"]))}, True),
    }),
    "kms-key-policy-no-wildcard-action": ("aws:kms/key:Key", {
        "root-admin": ({"policy": doc(allow(["kms:*"], ["*"], Principal={"AWS": "arn:aws:iam::123456789012:root"}))}, False),
        "service-star": ({"policy": doc(allow(["kms:*"], ["*"], Principal={"Service": "logs.amazonaws.com"}))}, True),
        "service-suffix": ({"policy": doc(allow(["kms:GenerateDataKey*"], ["*"], Principal={"Service": "x"}))}, True),
    }),
    "aws-policy-no-public-principal": ("aws:s3/bucketPolicy:BucketPolicy", {
        "named": ({"policy": doc(allow(["s3:GetObject"], Principal={"Service": "cloudtrail.amazonaws.com"}))}, False),
        "deny-star": ({"policy": doc({"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                      "Resource": "*"})}, False),
        "star": ({"policy": doc(allow(["s3:GetObject"], Principal="*"))}, True),
        "aws-star": ({"policy": doc(allow(["s3:GetObject"], Principal={"AWS": "*"}))}, True),
    }),
    "s3-bucket-public-access-block": ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {
        "good": ({"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                  "restrictPublicBuckets": True}, False),
        "one-open": ({"blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True,
                      "restrictPublicBuckets": True}, True),
        "unset": ({"blockPublicAcls": True}, True),
    }),
    "s3-bucket-policy-deny-insecure-transport": ("aws:s3/bucketPolicy:BucketPolicy", {
        "good": ({"policy": doc({"Sid": "TLS", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
                                 "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}})}, False),
        "unknown": ({"policy": UNKNOWN}, False),
        "missing": ({"policy": doc(allow(["s3:GetObject"], Principal={"Service": "x"}))}, True),
    }),
    "lambda-function-url-no-public-access": ("aws:lambda/functionUrl:FunctionUrl", {
        "iam": ({"authorizationType": "AWS_IAM"}, False), "open": ({"authorizationType": "NONE"}, True),
    }),
    "lambda-permission-no-public-principal": ("aws:lambda/permission:Permission", {
        "service": ({"principal": "s3.amazonaws.com"}, False), "anyone": ({"principal": "*"}, True),
    }),
    "iot-policy-thing-scoped": ("aws:iot/policy:Policy", {
        "scoped": ({"policy": doc(allow(["iot:Connect"], ["arn:aws:iot:r:a:client/${iot:Connection.Thing.ThingName}"]))}, False),
        "any-client": ({"policy": doc(allow(["iot:Connect"], ["arn:aws:iot:r:a:client/*"]))}, True),
        "any-topic": ({"policy": doc(allow(["iot:Publish"], ["arn:aws:iot:r:a:topic/factory/*"]))}, True),
    }),
    "iot-topic-rule-sql-version": ("aws:iot/topicRule:TopicRule", {
        "good": ({"sqlVersion": "2016-03-23"}, False), "old": ({"sqlVersion": "2015-10-08"}, True),
    }),
    "iot-topic-rule-error-action": ("aws:iot/topicRule:TopicRule", {
        "good": ({"errorAction": {"cloudwatchLogs": {"logGroupName": "g", "roleArn": "r"}}}, False),
        "none": ({}, True),
    }),
    "lambda-event-source-mapping-partial-batch-response": ("aws:lambda/eventSourceMapping:EventSourceMapping", {
        "good": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s", "functionResponseTypes": ["ReportBatchItemFailures"]}, False),
        "unknown-stream": ({"eventSourceArn": UNKNOWN, "startingPosition": "LATEST"}, True),
        "missing": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s"}, True),
        "sqs": ({"eventSourceArn": "arn:aws:sqs:r:a:q"}, False),
    }),
    "lambda-event-source-mapping-bounded-retries": ("aws:lambda/eventSourceMapping:EventSourceMapping", {
        "good": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s", "maximumRetryAttempts": 5,
                  "maximumRecordAgeInSeconds": 3600}, False),
        "forever": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s", "maximumRetryAttempts": -1,
                     "maximumRecordAgeInSeconds": 3600}, True),
        "unset": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s"}, True),
    }),
    "lambda-event-source-mapping-bisect": ("aws:lambda/eventSourceMapping:EventSourceMapping", {
        "good": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s", "bisectBatchOnFunctionError": True}, False),
        "off": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s"}, True),
    }),
    "lambda-event-source-mapping-failure-destination": ("aws:lambda/eventSourceMapping:EventSourceMapping", {
        "good": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s",
                  "destinationConfig": {"onFailure": {"destinationArn": UNKNOWN}}}, False),
        "none": ({"eventSourceArn": "arn:aws:kinesis:r:a:stream/s"}, True),
    }),
    "cloudtrail-trail-multi-region-validated": ("aws:cloudtrail/trail:Trail", {
        "good": ({"isMultiRegionTrail": True, "enableLogFileValidation": True}, False),
        "single": ({"isMultiRegionTrail": False, "enableLogFileValidation": True}, True),
        "unvalidated": ({"isMultiRegionTrail": True}, True),
    }),
    "cloudtrail-trail-insights": ("aws:cloudtrail/trail:Trail", {
        "good": ({"insightSelectors": [{"insightType": "ApiCallRateInsight"}, {"insightType": "ApiErrorRateInsight"}]}, False),
        "one": ({"insightSelectors": [{"insightType": "ApiCallRateInsight"}]}, True),
        "none": ({}, True),
    }),
}


@pytest.mark.parametrize("policy", sorted(CASES))
def test_policy_fails_exactly_the_bad_fixtures(analyzer, policy):
    type_token, cases = CASES[policy]
    resources = [fixture(type_token, f"{policy}-{name}", props) for name, (props, _) in cases.items()]
    expected = {f"{policy}-{name}" for name, (_, fails) in cases.items() if fails}
    assert failing(analyzer, policy, resources) == expected


def test_every_resource_policy_has_fixtures(analyzer):
    stack_policies = {"s3-bucket-companion-resources", "lambda-function-log-group", "kms-key-from-this-stack"}
    assert set(analyzer.policy_names) - stack_policies == set(CASES)


def test_every_policy_describes_itself(analyzer):
    for policy in analyzer.info.policies:
        assert policy.description and policy.remediation_steps and policy.severity, policy.name
        assert policy.name.count("-") >= 2, f"{policy.name}: expected <service>-<resource>-<rule>"
