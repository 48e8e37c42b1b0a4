"""Encryption policies: the exact fixtures each fails, first-preview (unknown key) fixtures included."""

import pytest

from tests.policies.conftest import KEY_ARN, UNKNOWN, PolicyCases, check_policy_cases, fails, passes

S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def sse_rule(algorithm="aws:kms", key=KEY_ARN, bucket_key=True):
    default = {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key is not None else {})}
    return {"applyServerSideEncryptionByDefault": default, **({"bucketKeyEnabled": bucket_key}
                                                              if bucket_key is not None else {})}


CASES = [
    PolicyCases("kinesis-stream-customer-managed-key", "aws:kinesis/stream:Stream", [
        passes("stack-key", {"encryptionType": "KMS", "kmsKeyId": KEY_ARN}),
        passes("unknown-key", {"encryptionType": "KMS", "kmsKeyId": UNKNOWN}),
        passes("unknown-type-and-key", {"encryptionType": UNKNOWN, "kmsKeyId": UNKNOWN}),
        fails("unencrypted", {}),
        fails("kms-without-key", {"encryptionType": "KMS"}),
        fails("aws-managed-alias", {"encryptionType": "KMS", "kmsKeyId": "alias/aws/kinesis"}),
        fails("aws-managed-alias-arn", {"encryptionType": "KMS",
                                        "kmsKeyId": "arn:aws:kms:ap-southeast-1:123456789012:alias/aws/kinesis"}),
        fails("type-none", {"encryptionType": "NONE", "kmsKeyId": KEY_ARN}),
        fails("type-none-unknown-key", {"encryptionType": "NONE", "kmsKeyId": UNKNOWN}),
    ]),
    PolicyCases("dynamodb-table-customer-managed-key", "aws:dynamodb/table:Table", [
        passes("stack-key", {"serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN}}),
        passes("unknown-key", {"serverSideEncryption": {"enabled": True, "kmsKeyArn": UNKNOWN}}),
        fails("aws-owned", {}),
        fails("aws-managed", {"serverSideEncryption": {"enabled": True}}),
        fails("disabled", {"serverSideEncryption": {"enabled": False, "kmsKeyArn": KEY_ARN}}),
    ]),
    PolicyCases("s3-bucket-customer-managed-key", S3_ENCRYPTION, [
        passes("stack-key", {"rules": [sse_rule()]}),
        passes("unknown-key", {"rules": [sse_rule(key=UNKNOWN)]}),
        passes("dsse", {"rules": [sse_rule(algorithm="aws:kms:dsse")]}),
        passes("unknown-rules", {"rules": UNKNOWN}),
        # Only the stack policy s3-bucket-sse-s3-only-for-access-logs can tell an access log target (test_stack.py).
        passes("sse-s3-judged-by-the-stack-policy", {"rules": [sse_rule(algorithm="AES256", key=None)]}),
        fails("aws-managed", {"rules": [sse_rule(key=None)]}),
        fails("aws-managed-alias", {"rules": [sse_rule(key="alias/aws/s3")]}),
        fails("no-rules", {"rules": []}),
    ]),
    PolicyCases("s3-bucket-key-enabled", S3_ENCRYPTION, [
        passes("bucket-key", {"rules": [sse_rule()]}),
        passes("unknown-flag", {"rules": [sse_rule(bucket_key=UNKNOWN)]}),
        fails("bucket-key-off", {"rules": [sse_rule(bucket_key=False)]}),
        fails("bucket-key-unset", {"rules": [sse_rule(bucket_key=None)]}),
        # S3 bucket keys exist only for SSE-KMS.
        passes("sse-s3", {"rules": [sse_rule(algorithm="AES256", key=None, bucket_key=None)]}),
    ]),
    PolicyCases("s3-bucket-inline-customer-managed-key", "aws:s3/bucket:Bucket", [
        passes("no-inline", {"bucketPrefix": "b-"}),
        passes("inline-kms", {"serverSideEncryptionConfiguration": {"rule": sse_rule()}}),
        fails("inline-aes", {"serverSideEncryptionConfiguration": {"rule": sse_rule("AES256", key=None)}}),
    ]),
    PolicyCases("s3-bucket-inline-customer-managed-key", "aws:s3/bucketV2:BucketV2", [
        passes("inline-unknown-key", {"serverSideEncryptionConfigurations": [],
                                      "serverSideEncryptionConfiguration": {"rule": sse_rule(key=UNKNOWN)}}),
        fails("inline-aws-managed", {"serverSideEncryptionConfiguration": {"rule": sse_rule(key="alias/aws/s3")}}),
    ]),
    PolicyCases("cloudwatch-log-group-customer-managed-key", "aws:cloudwatch/logGroup:LogGroup", [
        passes("stack-key", {"kmsKeyId": KEY_ARN}), passes("unknown-key", {"kmsKeyId": UNKNOWN}),
        fails("unencrypted", {}), fails("empty-key", {"kmsKeyId": ""}),
    ]),
    PolicyCases("sqs-queue-customer-managed-key", "aws:sqs/queue:Queue", [
        passes("stack-key", {"kmsMasterKeyId": KEY_ARN}),
        fails("sqs-managed", {"sqsManagedSseEnabled": True}),
        fails("aws-managed", {"kmsMasterKeyId": "alias/aws/sqs"}),
    ]),
    PolicyCases("sns-topic-customer-managed-key", "aws:sns/topic:Topic", [
        passes("stack-key", {"kmsMasterKeyId": KEY_ARN}), passes("unknown-key", {"kmsMasterKeyId": UNKNOWN}),
        fails("unencrypted", {}), fails("aws-managed", {"kmsMasterKeyId": "alias/aws/sns"}),
    ]),
    PolicyCases("cloudtrail-trail-customer-managed-key", "aws:cloudtrail/trail:Trail", [
        passes("stack-key", {"kmsKeyId": KEY_ARN}), passes("unknown-key", {"kmsKeyId": UNKNOWN}),
        fails("unencrypted", {}),
    ]),
    PolicyCases("lambda-function-environment-customer-managed-key", "aws:lambda/function:Function", [
        passes("stack-key", {"environment": {"variables": {"A": "1"}}, "kmsKeyArn": KEY_ARN}),
        passes("no-variables", {"runtime": "python3.13"}),
        passes("unknown-key", {"environment": {"variables": {"A": UNKNOWN}}, "kmsKeyArn": UNKNOWN}),
        fails("default-key", {"environment": {"variables": {"A": "1"}}}),
        fails("unknown-variables-default-key", {"environment": {"variables": UNKNOWN}}),
    ]),
    PolicyCases("kms-key-rotation-enabled", "aws:kms/key:Key", [
        passes("rotating", {"enableKeyRotation": True}),
        passes("asymmetric", {"customerMasterKeySpec": "RSA_2048"}),
        passes("unknown", {"enableKeyRotation": UNKNOWN}),
        fails("off", {"enableKeyRotation": False}), fails("unset", {}),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)
