"""Stack-level rules: what must hold between resources, not inside one."""

from __future__ import annotations

from typing import Any, Callable, Optional

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from encryption import LOG_GROUP, S3_BUCKET_TYPES, S3_ENCRYPTION_TYPES, SSE_S3
from policy_kit import (
    MANDATORY,
    Report,
    Settings,
    as_list,
    get_path,
    is_allow,
    is_unknown,
    policy_statements,
    raw,
    stack_policy,
    statement_label,
    string_list_setting,
)

BUCKET_COMPANIONS = {
    "encryption": set(S3_ENCRYPTION_TYPES),
    "versioning": {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"},
    "public access block": {"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"},
}
BUCKET_LOGGING_TYPES = {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
IAM_POLICY_TYPES = {"aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy",
                    "aws:iam/groupPolicy:GroupPolicy"}
LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
TRAIL = "aws:cloudtrail/trail:Trail"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The CIS AWS Foundations monitoring controls, by what their filter pattern must name.
CIS_EVENTS = {
    "unauthorized API calls": ("UnauthorizedOperation", "AccessDenied"),
    "console sign-in without MFA": ("ConsoleLogin", "MFAUsed"),
    "root account use": ("userIdentity.type", "Root"),
    "IAM policy changes": ("PutRolePolicy", "AttachRolePolicy", "CreatePolicy", "DeletePolicy"),
    "CloudTrail configuration changes": ("CreateTrail", "UpdateTrail", "DeleteTrail", "StopLogging"),
    "KMS key disabling or scheduled deletion": ("DisableKey", "ScheduleKeyDeletion"),
    "S3 bucket policy changes": ("PutBucketPolicy", "DeleteBucketPolicy", "PutBucketAcl"),
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


def _refers_to(resource: PolicyResource, property_name: str, targets: set[str],
               value_matches: Callable[[Any], bool]) -> bool:
    """Whether `resource.<property_name>` refers to one of `targets` (URNs): by dependency, or by known value."""
    top = property_name.split(".")[0]
    if any(dep.urn in targets for dep in resource.property_dependencies.get(top, [])):
        return True
    value = get_path(raw(resource.props), property_name)
    return value is not None and not is_unknown(value) and value_matches(value)


def _equal_to(name: Any) -> Callable[[Any], bool]:
    """A `value_matches` for a resource's name as read from its properties (None: the name is not known)."""
    return lambda value: name is not None and value == name


def _bucket_companions(args: StackValidationArgs, _settings: Settings, report: Report) -> None:
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    for bucket in buckets:
        name = get_path(raw(bucket.props), "bucket")
        for role, types in BUCKET_COMPANIONS.items():
            if not any(_refers_to(r, "bucket", {bucket.urn}, _equal_to(name))
                       for r in args.resources if r.resource_type in types):
                report(f"bucket {bucket.name} has no {role} resource in the stack (none names it in `bucket`)",
                       bucket.urn)


def _function_log_groups(args: StackValidationArgs, _settings: Settings, report: Report) -> None:
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


def _bucket_of(resource: PolicyResource, buckets: list[PolicyResource]) -> Optional[PolicyResource]:
    """The bucket of the stack that `resource.bucket` names (by dependency, or by known name)."""
    for bucket in buckets:
        name = get_path(raw(bucket.props), "bucket")
        if _refers_to(resource, "bucket", {bucket.urn}, _equal_to(name)):
            return bucket
    return None


def _log_targets(args: StackValidationArgs, buckets: list[PolicyResource]) -> dict[str, list[PolicyResource]]:
    """Bucket URN -> the logging configurations that deliver into it (`targetBucket`)."""
    targets: dict[str, list[PolicyResource]] = {}
    for logging in (r for r in args.resources if r.resource_type in BUCKET_LOGGING_TYPES):
        for bucket in buckets:
            name = get_path(raw(bucket.props), "bucket")
            if _refers_to(logging, "targetBucket", {bucket.urn}, _equal_to(name)):
                targets.setdefault(bucket.urn, []).append(logging)
    return targets


def _writers_besides_log_delivery(statements: list[dict]) -> list[str]:
    """What, besides S3's log delivery putting objects, the Allow statements of a bucket policy grant."""
    others: list[str] = []
    for index, statement in enumerate(statements):
        if not is_allow(statement):
            continue
        services = as_list(get_path(statement, "Principal.Service"))
        actions = as_list(statement.get("Action"))
        if set(get_path(statement, "Principal", {}) or {}) != {"Service"} or services != [LOG_DELIVERY_SERVICE]:
            others.append(f"{statement_label(statement, index)} allows {statement.get('Principal')!r}")
        elif set(actions) != {"s3:PutObject"}:
            others.append(f"{statement_label(statement, index)} allows {', '.join(map(str, actions))}")
    return others


def _sse_s3_only_for_access_logs(args: StackValidationArgs, _settings: Settings, report: Report) -> None:
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    targets = _log_targets(args, buckets)
    for encryption in (r for r in args.resources if r.resource_type in S3_ENCRYPTION_TYPES):
        algorithms = [get_path(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
                      for rule in as_list(raw(encryption.props).get("rules"))]
        if SSE_S3 not in algorithms:
            continue
        bucket = _bucket_of(encryption, buckets)
        if bucket is None:
            report("the bucket is encrypted with SSE-S3 and is not a bucket of this stack: use the stack's key",
                   encryption.urn)
            continue
        if bucket.urn not in targets:
            report(f"bucket {bucket.name} is encrypted with SSE-S3 but no logging configuration delivers server "
                   "access logs into it (targetBucket): use the stack's key", encryption.urn)
            continue
        if any(_bucket_of(logging, buckets) is bucket for logging in targets[bucket.urn]):
            report(f"bucket {bucket.name} logs its own requests into itself: every delivery is logged again",
                   encryption.urn)
        policies = [r for r in args.resources if r.resource_type == BUCKET_POLICY and _bucket_of(r, buckets) is bucket]
        if not policies:
            report(f"bucket {bucket.name} is encrypted with SSE-S3 and has no bucket policy letting only "
                   f"{LOG_DELIVERY_SERVICE} write", encryption.urn)
        for policy in policies:
            statements = policy_statements(raw(policy.props).get("policy"))
            if statements is None:
                continue  # unknown in a first preview: the update run judges it
            others = _writers_besides_log_delivery(statements)
            if others or not any(is_allow(statement) for statement in statements):
                report(f"bucket {bucket.name} is encrypted with SSE-S3, so only {LOG_DELIVERY_SERVICE} may write "
                       f"into it, but its policy {policy.name}: {'; '.join(others) or 'allows no log delivery'}",
                       policy.urn)
        for grant in (r for r in args.resources if r.resource_type in IAM_POLICY_TYPES):
            if any(dep.urn == bucket.urn for deps in grant.property_dependencies.values() for dep in deps):
                writes = [action for statement in policy_statements(raw(grant.props).get("policy")) or []
                          if is_allow(statement) for action in as_list(statement.get("Action"))
                          if isinstance(action, str) and (action.startswith("s3:Put") or action in ("s3:*", "*"))]
                if writes:
                    report(f"bucket {bucket.name} is encrypted with SSE-S3, but {grant.name} grants "
                           f"{', '.join(writes)} on it", grant.urn)


def _server_access_logging(args: StackValidationArgs, _settings: Settings, report: Report) -> None:
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    targets = _log_targets(args, buckets)
    logged = {bucket.urn for logging in args.resources if logging.resource_type in BUCKET_LOGGING_TYPES
              for bucket in [_bucket_of(logging, buckets)] if bucket is not None}
    for bucket in buckets:
        # A log target does not log itself: that would log every delivery, forever.
        if bucket.urn not in logged and bucket.urn not in targets:
            report(f"bucket {bucket.name} has no server access logging (no logging configuration names it in "
                   "`bucket`): requests to its objects leave no record", bucket.urn)


def _log_group_of(resource: PolicyResource, property_name: str,
                  groups: list[PolicyResource]) -> Optional[PolicyResource]:
    """The log group of the stack that `resource.<property_name>` names (a name, or an ARN ending `:*`)."""
    for group in groups:
        name = raw(group.props).get("name")

        def names_it(value: Any, name: Any = name) -> bool:
            return name is not None and isinstance(value, str) and (
                value == name or value.removesuffix(":*").endswith(f":log-group:{name}"))
        if _refers_to(resource, property_name, {group.urn}, names_it):
            return group
    return None


def _cis_alarms(args: StackValidationArgs, _settings: Settings, report: Report) -> None:
    groups = [r for r in args.resources if r.resource_type == LOG_GROUP]
    filters = [r for r in args.resources if r.resource_type == METRIC_FILTER]
    alarms = [raw(r.props) for r in args.resources if r.resource_type == METRIC_ALARM]
    for trail in (r for r in args.resources if r.resource_type == TRAIL):
        group = _log_group_of(trail, "cloudWatchLogsGroupArn", groups)
        if group is None:
            continue  # no delivery (cloudtrail-trail-cloudwatch-logs), or into a group of another stack
        watched = []
        for metric_filter in (f for f in filters if _log_group_of(f, "logGroupName", [group]) is group):
            props = raw(metric_filter.props)
            metric = (get_path(props, "metricTransformation.namespace"), get_path(props, "metricTransformation.name"))
            # A filter counts once an alarm with actions watches its metric.
            if any((alarm.get("namespace"), alarm.get("metricName")) == metric and alarm.get("alarmActions")
                   and alarm.get("actionsEnabled") is not False for alarm in alarms):
                watched.append(str(props.get("pattern", "")))
        missing = [event for event, tokens in CIS_EVENTS.items()
                   if not any(all(token in pattern for token in tokens) for pattern in watched)]
        if missing:
            report(f"trail {trail.name} delivers to {group.name}, but no metric filter there with an alarm that "
                   f"notifies someone catches: {', '.join(missing)} (CIS AWS Foundations 4.x)", trail.urn)


def _keys_from_this_stack(args: StackValidationArgs, settings: Settings, report: Report) -> None:
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
        "s3-bucket-sse-s3-only-for-access-logs",
        "A bucket encrypted with SSE-S3 is a server access log target whose policy lets only S3's log delivery "
        "write (S3 delivers access logs only with SSE-S3); every other bucket uses the stack's key.",
        validate=_sse_s3_only_for_access_logs, enforcement_level=MANDATORY, severity=Severity.HIGH,
        remediation="Encrypt the bucket with the stack's key; or, for the access log bucket, name it in "
                    "aws.s3.BucketLogging's target_bucket and let only logging.s3.amazonaws.com s3:PutObject "
                    "(components/access_logs.py)."),
    stack_policy(
        "s3-bucket-server-access-logging",
        "Every bucket except an access log target logs its requests (server access logging, CIS 3.6).",
        validate=_server_access_logging, enforcement_level=MANDATORY, severity=Severity.MEDIUM,
        remediation="Declare aws.s3.BucketLogging for the bucket with target_bucket the stack's access log bucket."),
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
        "cloudtrail-cis-metric-alarms",
        "A trail delivering to a log group of the stack has the CIS AWS Foundations metric filters there, each "
        "watched by an alarm that notifies someone.",
        validate=_cis_alarms, enforcement_level=MANDATORY, severity=Severity.MEDIUM,
        remediation="Declare aws.cloudwatch.LogMetricFilter on the trail's group for each CIS event and a "
                    "MetricAlarm on its metric with alarm_actions (components/audit.py: SECURITY_EVENTS)."),
    stack_policy(
        "kms-key-from-this-stack",
        "Every encrypting resource uses a KMS key declared in this stack, or one named in config.",
        validate=_keys_from_this_stack, enforcement_level=MANDATORY, severity=Severity.HIGH,
        remediation="Reference the stack's key (key.arn), or list an external key in allowedKeyArns.",
        config={"allowedKeyArns": string_list_setting([], "ARNs of keys from outside the stack that resources may use")}),
]
