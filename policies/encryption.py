"""Encryption at rest with a customer-managed KMS key, for every store that takes one.

Mandatory: data under an AWS-owned or AWS-managed key cannot be audited,
rotated or revoked by the team that owns it.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from pulumi_policy import Severity

from policy_kit import (
    MANDATORY,
    Properties,
    Report,
    Settings,
    Validator,
    get_path,
    is_customer_key_reference,
    is_known,
    is_unknown,
    resource_policy,
)

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
S3_ENCRYPTION_TYPES = [
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
]
S3_BUCKET_TYPES = ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"]
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
ATHENA_WORKGROUP = "aws:athena/workgroup:Workgroup"
ATHENA_RESULT_ENCRYPTION = "configuration.resultConfiguration.encryptionConfiguration"
# Athena's result encryption options that use a KMS key (SSE_S3 does not).
ATHENA_KMS_OPTIONS = ("SSE_KMS", "CSE_KMS")

encryption_policy = partial(resource_policy, enforcement_level=MANDATORY, severity=Severity.HIGH)


def require_key(properties: Any, path: str, report: Report, what: str) -> None:
    """Report unless `path` names a customer-managed key (an unknown value is one)."""
    value = get_path(properties, path)
    if is_customer_key_reference(value) is False:
        found = "not set" if value in (None, "") else f"{value!r}, an AWS-managed key"
        report(f"{what} must be encrypted with a customer-managed KMS key: {path} is {found}")


def _kinesis(properties: Properties, _settings: Settings, report: Report) -> None:
    encryption_type = properties.get("encryptionType")
    if is_known(encryption_type) and encryption_type != "KMS":
        report(f"the stream's encryptionType is {encryption_type!r}: set it to \"KMS\" with the stack's key")
        return
    require_key(properties, "kmsKeyId", report, "the stream")


def _dynamodb(properties: Properties, _settings: Settings, report: Report) -> None:
    enabled = get_path(properties, "serverSideEncryption.enabled")
    if is_known(enabled) and enabled is not True:
        report("the table is encrypted with the AWS-owned key: serverSideEncryption.enabled is not true")
        return
    require_key(properties, "serverSideEncryption.kmsKeyArn", report, "the table")


SSE_S3 = "AES256"


def _s3_rules(rules: Any, report: Report, describe: Callable[[int], str], defer_sse_s3: bool = False) -> None:
    """The default encryption rules of a bucket use SSE-KMS with a customer key.

    With `defer_sse_s3`, SSE-S3 is left to the stack policy
    `s3-bucket-sse-s3-only-for-access-logs`, which alone can see whether the
    bucket is a server access log target (S3 delivers those only with SSE-S3).
    """
    if is_unknown(rules):
        return
    if not rules:
        report("the bucket has no default encryption rule")
    for index, rule in enumerate(rules or []):
        default = get_path(rule, "applyServerSideEncryptionByDefault", {})
        algorithm = get_path(default, "sseAlgorithm")
        if defer_sse_s3 and algorithm == SSE_S3:
            continue
        if is_known(algorithm) and algorithm not in KMS_ALGORITHMS:
            report(f"{describe(index)}.applyServerSideEncryptionByDefault.sseAlgorithm is {algorithm!r}: "
                   "use \"aws:kms\" with the stack's key")
            continue
        require_key(default, "kmsMasterKeyId", report, f"{describe(index)}")


def _s3_encryption(properties: Properties, _settings: Settings, report: Report) -> None:
    _s3_rules(properties.get("rules"), report, lambda index: f"rules[{index}]", defer_sse_s3=True)


def _s3_bucket_key(properties: Properties, _settings: Settings, report: Report) -> None:
    rules = properties.get("rules")
    if is_unknown(rules):
        return
    for index, rule in enumerate(rules or []):
        # A bucket key exists only for SSE-KMS; an unknown algorithm may be that.
        if get_path(rule, "applyServerSideEncryptionByDefault.sseAlgorithm") == SSE_S3:
            continue
        enabled = get_path(rule, "bucketKeyEnabled")
        if is_known(enabled) and enabled is not True:
            report(f"rules[{index}].bucketKeyEnabled is {enabled!r}: without a bucket key every object "
                   "costs a KMS call")


def _s3_inline_encryption(properties: Properties, _settings: Settings, report: Report) -> None:
    inline = properties.get("serverSideEncryptionConfiguration")
    if inline is None or is_unknown(inline):
        return
    rule = get_path(inline, "rule")
    rules = [rule] if rule is not None else get_path(inline, "rules", [])
    _s3_rules(rules, report, lambda _index: "serverSideEncryptionConfiguration.rule")


def _key_at(path: str, what: str) -> Validator:
    def validate(properties: Properties, _settings: Settings, report: Report) -> None:
        require_key(properties, path, report, what)
    return validate


def _lambda_environment(properties: Properties, _settings: Settings, report: Report) -> None:
    variables = get_path(properties, "environment.variables")
    # An unknown map of variables is still variables to encrypt.
    if variables:
        require_key(properties, "kmsKeyArn", report, "the function's environment variables")


def _athena_results(properties: Properties, _settings: Settings, report: Report) -> None:
    option = get_path(properties, f"{ATHENA_RESULT_ENCRYPTION}.encryptionOption")
    if is_unknown(option):
        return
    if option is None:
        report(f"the workgroup's query results are not encrypted: {ATHENA_RESULT_ENCRYPTION}.encryptionOption "
               "is not set")
        return
    if option not in ATHENA_KMS_OPTIONS:
        report(f"{ATHENA_RESULT_ENCRYPTION}.encryptionOption is {option!r}: use \"SSE_KMS\" with the stack's key")
        return
    require_key(properties, f"{ATHENA_RESULT_ENCRYPTION}.kmsKeyArn", report, "the workgroup's query results")


def _athena_enforced(properties: Properties, _settings: Settings, report: Report) -> None:
    # Unset means enforced (the provider's and Athena's default).
    enforced = get_path(properties, "configuration.enforceWorkgroupConfiguration")
    if is_known(enforced) and enforced is False:
        report("configuration.enforceWorkgroupConfiguration is false: a client may send its query results "
               "elsewhere or unencrypted")


def _kms_rotation(properties: Properties, _settings: Settings, report: Report) -> None:
    spec = properties.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    rotation = properties.get("enableKeyRotation")
    # AWS rotates only symmetric encryption keys; an unknown spec may be one.
    if spec in ("SYMMETRIC_DEFAULT", None) or is_unknown(spec):
        if is_known(rotation) and rotation is not True:
            report(f"enableKeyRotation is {rotation!r}: the key material never rotates")


POLICIES = [
    encryption_policy(
        "kinesis-stream-customer-managed-key", "Kinesis streams are encrypted with a customer-managed KMS key.",
        resource_types=["aws:kinesis/stream:Stream"], validate=_kinesis,
        remediation="Set encryption_type=\"KMS\" and kms_key_id to the stack's key ARN."),
    encryption_policy(
        "dynamodb-table-customer-managed-key",
        "DynamoDB tables are encrypted with a customer-managed KMS key, not the AWS-owned or AWS-managed one.",
        resource_types=["aws:dynamodb/table:Table"], validate=_dynamodb,
        remediation="Set server_side_encryption={\"enabled\": True, \"kms_key_arn\": key.arn}."),
    encryption_policy(
        "s3-bucket-customer-managed-key",
        "A bucket's default encryption (pulumi-aws 7.x's separate resource) is SSE-KMS with a customer-managed key "
        "(SSE-S3 is judged by s3-bucket-sse-s3-only-for-access-logs).",
        resource_types=S3_ENCRYPTION_TYPES, validate=_s3_encryption,
        remediation="Use aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm \"aws:kms\" and "
                    "kms_master_key_id=key.arn."),
    encryption_policy(
        "s3-bucket-key-enabled", "A bucket's SSE-KMS default encryption uses an S3 bucket key.",
        resource_types=S3_ENCRYPTION_TYPES, validate=_s3_bucket_key, severity=Severity.LOW,
        remediation="Set bucket_key_enabled=True on the encryption rule (fewer KMS calls, lower cost)."),
    encryption_policy(
        "s3-bucket-inline-customer-managed-key",
        "A bucket's deprecated inline encryption, where still used, is SSE-KMS with a customer-managed key.",
        resource_types=S3_BUCKET_TYPES, validate=_s3_inline_encryption,
        remediation="Move encryption to aws.s3.BucketServerSideEncryptionConfiguration with the stack's key."),
    encryption_policy(
        "cloudwatch-log-group-customer-managed-key", "CloudWatch log groups are encrypted with a customer-managed key.",
        resource_types=[LOG_GROUP], validate=_key_at("kmsKeyId", "the log group"),
        remediation="Set kms_key_id to the key ARN (the key policy must allow logs.<region>.amazonaws.com)."),
    encryption_policy(
        "sqs-queue-customer-managed-key",
        "SQS queues are encrypted with a customer-managed KMS key (SQS-managed SSE does not count).",
        resource_types=["aws:sqs/queue:Queue"], validate=_key_at("kmsMasterKeyId", "the queue"),
        remediation="Set kms_master_key_id to the stack's key ARN."),
    encryption_policy(
        "sns-topic-customer-managed-key", "SNS topics are encrypted with a customer-managed KMS key.",
        resource_types=["aws:sns/topic:Topic"], validate=_key_at("kmsMasterKeyId", "the topic"),
        remediation="Set kms_master_key_id to the stack's key ARN (and let publishing services use the key)."),
    encryption_policy(
        "cloudtrail-trail-customer-managed-key", "CloudTrail log files are encrypted with a customer-managed KMS key.",
        resource_types=["aws:cloudtrail/trail:Trail"], validate=_key_at("kmsKeyId", "the trail's log files"),
        remediation="Set kms_key_id to the key ARN; the key policy must let cloudtrail.amazonaws.com use it."),
    encryption_policy(
        "lambda-function-environment-customer-managed-key",
        "Lambda functions with environment variables encrypt them with a customer-managed KMS key.",
        resource_types=["aws:lambda/function:Function"], validate=_lambda_environment, severity=Severity.MEDIUM,
        remediation="Set kms_key_arn on the function to the stack's key ARN."),
    encryption_policy(
        "athena-workgroup-customer-managed-key",
        "Athena workgroups encrypt query results with a customer-managed KMS key.",
        resource_types=[ATHENA_WORKGROUP], validate=_athena_results,
        remediation="Set configuration.result_configuration.encryption_configuration to "
                    "{\"encryption_option\": \"SSE_KMS\", \"kms_key_arn\": key.arn}; queriers need "
                    "kms:GenerateDataKey and kms:Decrypt on the key."),
    encryption_policy(
        "athena-workgroup-enforce-configuration",
        "Athena workgroups enforce their configuration, so clients cannot override result encryption.",
        resource_types=[ATHENA_WORKGROUP], validate=_athena_enforced,
        remediation="Set configuration.enforce_workgroup_configuration=True."),
    encryption_policy(
        "kms-key-rotation-enabled", "Symmetric customer-managed KMS keys rotate their key material.",
        resource_types=["aws:kms/key:Key"], validate=_kms_rotation, remediation="Set enable_key_rotation=True."),
]
