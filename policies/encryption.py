"""Encryption at rest with a customer-managed KMS key, for every store that takes one."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from policy_kit import get_path, is_customer_key_reference, is_unknown, resource_policy

MANDATORY = EnforcementLevel.MANDATORY


def _require_key(properties: dict, path: str, report, what: str) -> None:
    reference = is_customer_key_reference(get_path(properties, path))
    if reference is False:
        value = get_path(properties, path)
        report(f"{what} must be encrypted with a customer-managed KMS key: {path} is "
               f"{'not set' if value in (None, '') else repr(value) + ' (an AWS-managed key)'}")


def _kinesis(properties, _config, report):
    encryption_type = properties.get("encryptionType")
    if not is_unknown(encryption_type) and encryption_type != "KMS":
        report(f"the stream's encryptionType is {encryption_type!r}; set it to \"KMS\" with the stack's key")
        return
    _require_key(properties, "kmsKeyId", report, "the stream")


def _dynamodb(properties, _config, report):
    sse = properties.get("serverSideEncryption")
    enabled = get_path(properties, "serverSideEncryption.enabled")
    if not is_unknown(sse) and not is_unknown(enabled) and enabled is not True:
        report("the table uses an AWS-owned key: set serverSideEncryption {enabled: true, kmsKeyArn: <key>}")
        return
    _require_key(properties, "serverSideEncryption.kmsKeyArn", report, "the table")


def _s3_rules(rules, report) -> None:
    if is_unknown(rules):
        return
    if not rules:
        report("the bucket has no default encryption rule")
    for index, rule in enumerate(rules or []):
        default = get_path(rule, "applyServerSideEncryptionByDefault", {})
        algorithm = get_path(default, "sseAlgorithm")
        if not is_unknown(algorithm) and algorithm not in ("aws:kms", "aws:kms:dsse"):
            report(f"rules[{index}] encrypts with {algorithm!r}; use \"aws:kms\" with the stack's key")
            continue
        _require_key(default, "kmsMasterKeyId", report, f"rules[{index}]")
        if get_path(rule, "bucketKeyEnabled") is False or "bucketKeyEnabled" not in rule:
            report(f"rules[{index}] has no bucket key: set bucketKeyEnabled true (fewer KMS calls, lower cost)")


def _s3_encryption(properties, _config, report):
    _s3_rules(properties.get("rules"), report)


def _s3_inline_encryption(properties, _config, report):
    inline = properties.get("serverSideEncryptionConfiguration")
    if inline is not None and not is_unknown(inline):
        rule = get_path(inline, "rule")
        _s3_rules([rule] if isinstance(rule, dict) else get_path(inline, "rules", []), report)


def _log_group(properties, _config, report):
    _require_key(properties, "kmsKeyId", report, "the log group")


def _queue(properties, _config, report):
    _require_key(properties, "kmsMasterKeyId", report, "the queue")


def _topic(properties, _config, report):
    _require_key(properties, "kmsMasterKeyId", report, "the topic")


def _trail(properties, _config, report):
    _require_key(properties, "kmsKeyId", report, "the trail's log files")


def _lambda_environment(properties, _config, report):
    variables = get_path(properties, "environment.variables")
    if variables and not is_unknown(variables):
        _require_key(properties, "kmsKeyArn", report, "the function's environment variables")


def _kms_rotation(properties, _config, report):
    spec = properties.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    rotation = properties.get("enableKeyRotation")
    if spec == "SYMMETRIC_DEFAULT" and not is_unknown(rotation) and rotation is not True:
        report("the key does not rotate: set enableKeyRotation true")


def _encryption_policy(name, description, types, validate, remediation, severity=Severity.HIGH):
    return resource_policy(name, description, resource_types=types, validate=validate, severity=severity,
                           remediation=remediation, enforcement_level=MANDATORY)


POLICIES = [
    _encryption_policy("kinesis-stream-customer-managed-key",
                       "Kinesis streams are encrypted with a customer-managed KMS key.",
                       ["aws:kinesis/stream:Stream"], _kinesis,
                       "Set encryption_type=\"KMS\" and kms_key_id to the stack's key ARN."),
    _encryption_policy("dynamodb-table-customer-managed-key",
                       "DynamoDB tables are encrypted with a customer-managed KMS key, not the AWS-owned or AWS-managed one.",
                       ["aws:dynamodb/table:Table"], _dynamodb,
                       "Set server_side_encryption={\"enabled\": True, \"kms_key_arn\": key.arn}."),
    _encryption_policy("s3-bucket-customer-managed-key",
                       "S3 buckets' default encryption (the separate encryption resource) uses SSE-KMS with a customer-managed key and a bucket key.",
                       ["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"],
                       _s3_encryption,
                       "Use aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm \"aws:kms\", kms_master_key_id=key.arn and bucket_key_enabled=True."),
    _encryption_policy("s3-bucket-inline-customer-managed-key",
                       "A bucket's deprecated inline encryption, where still used, names a customer-managed key.",
                       ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"], _s3_inline_encryption,
                       "Move encryption to aws.s3.BucketServerSideEncryptionConfiguration with the stack's key."),
    _encryption_policy("cloudwatch-log-group-customer-managed-key",
                       "CloudWatch log groups are encrypted with a customer-managed KMS key.",
                       ["aws:cloudwatch/logGroup:LogGroup"], _log_group,
                       "Set kms_key_id to the key ARN (the key policy must allow logs.<region>.amazonaws.com)."),
    _encryption_policy("sqs-queue-customer-managed-key",
                       "SQS queues are encrypted with a customer-managed KMS key (SQS-managed SSE does not count).",
                       ["aws:sqs/queue:Queue"], _queue, "Set kms_master_key_id to the stack's key ARN."),
    _encryption_policy("sns-topic-customer-managed-key",
                       "SNS topics are encrypted with a customer-managed KMS key.",
                       ["aws:sns/topic:Topic"], _topic,
                       "Set kms_master_key_id to the stack's key ARN (and let publishing services use the key)."),
    _encryption_policy("cloudtrail-trail-customer-managed-key",
                       "CloudTrail log files are encrypted with a customer-managed KMS key.",
                       ["aws:cloudtrail/trail:Trail"], _trail,
                       "Set kms_key_id to the key ARN; the key policy must let cloudtrail.amazonaws.com use it."),
    _encryption_policy("lambda-function-environment-customer-managed-key",
                       "Lambda functions with environment variables encrypt them with a customer-managed KMS key.",
                       ["aws:lambda/function:Function"], _lambda_environment,
                       "Set kms_key_arn on the function to the stack's key ARN.", severity=Severity.MEDIUM),
    _encryption_policy("kms-key-rotation-enabled",
                       "Symmetric customer-managed KMS keys rotate their key material yearly.",
                       ["aws:kms/key:Key"], _kms_rotation, "Set enable_key_rotation=True."),
]
