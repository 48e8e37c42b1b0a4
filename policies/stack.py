"""Stack-level rules: what must hold between resources, not inside one."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy_kit import get_path, is_unknown, raw

BUCKET_TYPES = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
BUCKET_COMPANIONS = {
    "encryption": {"aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                   "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"},
    "versioning": {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"},
    "public access block": {"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"},
}
KEY_TYPES = {"aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"}
# Where each encrypting resource names its key.
KEY_PROPERTIES = {
    "aws:kinesis/stream:Stream": "kmsKeyId",
    "aws:dynamodb/table:Table": "serverSideEncryption.kmsKeyArn",
    "aws:cloudwatch/logGroup:LogGroup": "kmsKeyId",
    "aws:cloudtrail/trail:Trail": "kmsKeyId",
    "aws:sns/topic:Topic": "kmsMasterKeyId",
    "aws:sqs/queue:Queue": "kmsMasterKeyId",
    "aws:lambda/function:Function": "kmsKeyArn",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId",
}


def _refers_to(resource, property_name: str, targets: set[str], value_matches) -> bool:
    """Whether `resource.<property_name>` refers to one of `targets` (URNs): by dependency, or by known value."""
    top = property_name.split(".")[0]
    if any(dep.urn in targets for dep in resource.property_dependencies.get(top, [])):
        return True
    value = get_path(raw(resource.props), property_name)
    return value is not None and not is_unknown(value) and value_matches(value)


def _bucket_companions(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    for bucket in buckets:
        name = get_path(raw(bucket.props), "bucket")
        for role, types in BUCKET_COMPANIONS.items():
            if not any(_refers_to(r, "bucket", {bucket.urn}, lambda value: value == name)
                       for r in args.resources if r.resource_type in types):
                report(f"bucket {bucket.name} has no {role} resource in the stack", bucket.urn)


def _function_log_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = [r for r in args.resources if r.resource_type == "aws:cloudwatch/logGroup:LogGroup"]
    for function in (r for r in args.resources if r.resource_type == "aws:lambda/function:Function"):
        props = raw(function.props)
        name = props.get("name")
        configured = get_path(props, "loggingConfig.logGroup")
        wanted = {n for n in (configured, f"/aws/lambda/{name}" if isinstance(name, str) else None) if n}
        matching = [g for g in groups if raw(g.props).get("name") in wanted
                    or (is_unknown(configured) and g in function.dependencies)]
        if not matching:
            report(f"function {function.name} has no log group of its own in the stack: Lambda would create one "
                   "that never expires and is not encrypted", function.urn)
        elif all(raw(g.props).get("retentionInDays") in (None, 0) for g in matching):
            report(f"function {function.name}'s log group keeps logs forever", function.urn)


def _keys_from_this_stack(args: StackValidationArgs, report: ReportViolation) -> None:
    keys = {r.urn for r in args.resources if r.resource_type in KEY_TYPES}
    allowed = set((args.get_config() or {}).get("allowedKeyArns", []))
    for resource in args.resources:
        path = KEY_PROPERTIES.get(resource.resource_type)
        if path is None or get_path(raw(resource.props), path) is None:
            continue  # a missing key is the encryption policies' finding
        if not _refers_to(resource, path, keys, lambda value: value in allowed):
            report(f"{resource.name} is encrypted with a key that is neither this stack's nor listed in "
                   "allowedKeyArns", resource.urn)


POLICIES = [
    StackValidationPolicy(
        name="s3-bucket-companion-resources",
        description="Every bucket in the stack has its encryption, versioning and public access block resources.",
        validate=_bucket_companions, enforcement_level=EnforcementLevel.MANDATORY, severity=Severity.HIGH,
        remediation_steps="Declare aws.s3.BucketServerSideEncryptionConfiguration, BucketVersioning and "
                          "BucketPublicAccessBlock for the bucket (see components/secure_bucket.py).",
    ),
    StackValidationPolicy(
        name="lambda-function-log-group",
        description="Every Lambda function has its own log group in the stack, with retention.",
        validate=_function_log_groups, enforcement_level=EnforcementLevel.ADVISORY, severity=Severity.MEDIUM,
        remediation_steps="Declare a LogGroup named /aws/lambda/<function> with retention and the stack's key, "
                          "and point logging_config.log_group at it.",
    ),
    StackValidationPolicy(
        name="kms-key-from-this-stack",
        description="Every encrypting resource uses a KMS key declared in this stack, or one named in config.",
        validate=_keys_from_this_stack, enforcement_level=EnforcementLevel.MANDATORY, severity=Severity.HIGH,
        remediation_steps="Reference the stack's key (key.arn), or list an external key in allowedKeyArns.",
        config_schema=PolicyConfigSchema(properties={
            "allowedKeyArns": {"type": "array", "items": {"type": "string"}, "default": [],
                               "description": "Keys from outside the stack that resources may use"},
        }),
    ),
]
