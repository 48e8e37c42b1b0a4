"""Stack-level rules: what must hold between resources, not inside one."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs

from encryption import LOG_GROUP, S3_BUCKET_TYPES, S3_ENCRYPTION_TYPES
from policy_kit import MANDATORY, get_path, is_unknown, raw, stack_policy, string_list_setting

BUCKET_COMPANIONS = {
    "encryption": set(S3_ENCRYPTION_TYPES),
    "versioning": {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"},
    "public access block": {"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"},
}
# A key of the stack, or an alias of one.
KEY_TYPES = {"aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey", "aws:kms/alias:Alias"}
# Where each encrypting resource names its key.
KEY_PROPERTIES = {
    "aws:kinesis/stream:Stream": "kmsKeyId",
    "aws:dynamodb/table:Table": "serverSideEncryption.kmsKeyArn",
    LOG_GROUP: "kmsKeyId",
    "aws:cloudtrail/trail:Trail": "kmsKeyId",
    "aws:sns/topic:Topic": "kmsMasterKeyId",
    "aws:sqs/queue:Queue": "kmsMasterKeyId",
    "aws:lambda/function:Function": "kmsKeyArn",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId",
    "aws:athena/workgroup:Workgroup": "configuration.resultConfiguration.encryptionConfiguration.kmsKeyArn",
}


def _refers_to(resource, property_name: str, targets: set[str], value_matches) -> bool:
    """Whether `resource.<property_name>` refers to one of `targets` (URNs): by dependency, or by known value."""
    top = property_name.split(".")[0]
    if any(dep.urn in targets for dep in resource.property_dependencies.get(top, [])):
        return True
    value = get_path(raw(resource.props), property_name)
    return value is not None and not is_unknown(value) and value_matches(value)


def _bucket_companions(args: StackValidationArgs, _settings, report: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    for bucket in buckets:
        name = get_path(raw(bucket.props), "bucket")
        for role, types in BUCKET_COMPANIONS.items():
            if not any(_refers_to(r, "bucket", {bucket.urn}, lambda value: value == name)
                       for r in args.resources if r.resource_type in types):
                report(f"bucket {bucket.name} has no {role} resource in the stack (none names it in `bucket`)",
                       bucket.urn)


def _function_log_groups(args: StackValidationArgs, _settings, report: ReportViolation) -> None:
    groups = [r for r in args.resources if r.resource_type == LOG_GROUP]
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


def _keys_from_this_stack(args: StackValidationArgs, settings, report: ReportViolation) -> None:
    keys = {r.urn for r in args.resources if r.resource_type in KEY_TYPES}
    allowed = set(settings["allowedKeyArns"])
    for resource in args.resources:
        path = KEY_PROPERTIES.get(resource.resource_type)
        if path is None or get_path(raw(resource.props), path) is None:
            continue  # a missing key is the encryption policies' finding
        if not _refers_to(resource, path, keys, lambda value: value in allowed):
            report(f"{path} of {resource.name} names a key that is neither this stack's nor listed in "
                   "allowedKeyArns", resource.urn)


POLICIES = [
    stack_policy(
        "s3-bucket-companion-resources",
        "Every bucket in the stack has its encryption, versioning and public access block resources.",
        validate=_bucket_companions, enforcement_level=MANDATORY, severity=Severity.HIGH,
        remediation="Declare aws.s3.BucketServerSideEncryptionConfiguration, BucketVersioning and "
                    "BucketPublicAccessBlock for the bucket (components/secure_bucket.py does all three)."),
    stack_policy(
        "lambda-function-log-group", "Every Lambda function has its own log group in the stack, with retention.",
        validate=_function_log_groups, enforcement_level=MANDATORY, severity=Severity.MEDIUM,
        remediation="Declare a LogGroup named /aws/lambda/<function> with retention and the stack's key, "
                    "and point logging_config.log_group at it."),
    stack_policy(
        "kms-key-from-this-stack",
        "Every encrypting resource uses a KMS key declared in this stack, or one named in config.",
        validate=_keys_from_this_stack, enforcement_level=MANDATORY, severity=Severity.HIGH,
        remediation="Reference the stack's key (key.arn), or list an external key in allowedKeyArns.",
        config={"allowedKeyArns": string_list_setting([], "ARNs of keys from outside the stack that resources may use")}),
]
