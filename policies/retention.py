"""Retention and recovery: how long data and logs are kept, and how they come back."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from policy_kit import as_list, get_path, is_unknown, resource_policy

ADVISORY = EnforcementLevel.ADVISORY
CLOUDWATCH_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                             2557, 2922, 3288, 3653]
ARCHIVE_STORAGE_CLASSES = {"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}


def _log_retention(properties, config, report):
    days = properties.get("retentionInDays")
    if is_unknown(days):
        return
    if days in (None, 0):
        report("the log group keeps logs forever: set retention_in_days")
    elif days not in CLOUDWATCH_RETENTION_DAYS:
        report(f"retentionInDays {days} is not a value CloudWatch Logs accepts")
    elif not config["minimumDays"] <= days <= config["maximumDays"]:
        report(f"retentionInDays {days} is outside {config['minimumDays']}..{config['maximumDays']} days")


def _stream_retention(properties, config, report):
    hours = properties.get("retentionPeriod", 24)
    if not is_unknown(hours) and hours < config["minimumHours"]:
        report(f"retentionPeriod {hours} h is below the minimum of {config['minimumHours']} h")


def _versioning(properties, _config, report):
    status = get_path(properties, "versioningConfiguration.status")
    if not is_unknown(status) and status != "Enabled":
        report(f"versioning status is {status!r}; set it to \"Enabled\"")


def _lifecycle(properties, config, report):
    rules = properties.get("rules")
    if is_unknown(rules):
        return
    for rule in as_list(rules):
        if get_path(rule, "status") != "Enabled":
            continue
        for transition in as_list(get_path(rule, "transitions")):
            days, storage_class = get_path(transition, "days"), get_path(transition, "storageClass")
            if storage_class in ARCHIVE_STORAGE_CLASSES and (is_unknown(days) or
                                                             (days is not None and days <= config["maximumDays"])):
                return
    report(f"no enabled lifecycle rule moves objects to an archive class ({', '.join(sorted(ARCHIVE_STORAGE_CLASSES))}) "
           f"within {config['maximumDays']} days")


def _point_in_time_recovery(properties, _config, report):
    enabled = get_path(properties, "pointInTimeRecovery.enabled")
    if not is_unknown(enabled) and enabled is not True:
        report("point-in-time recovery is off: set point_in_time_recovery={\"enabled\": True}")


def _deletion_window(properties, config, report):
    days = properties.get("deletionWindowInDays", 30)
    if not is_unknown(days) and days < config["minimumDays"]:
        report(f"deletionWindowInDays {days} is below the minimum of {config['minimumDays']}")


def _number(default, description, minimum=0):
    return {"type": "integer", "default": default, "minimum": minimum, "description": description}


POLICIES = [
    resource_policy(
        "cloudwatch-log-group-retention",
        "Log groups expire their logs, within a range of values CloudWatch Logs accepts.",
        resource_types=["aws:cloudwatch/logGroup:LogGroup"], validate=_log_retention, severity=Severity.MEDIUM,
        remediation="Set retention_in_days to an accepted value within the configured range.",
        enforcement_level=ADVISORY,
        config={"minimumDays": _number(30, "Shortest retention allowed", 1),
                "maximumDays": _number(3653, "Longest retention allowed", 1)},
    ),
    resource_policy(
        "kinesis-stream-retention-minimum",
        "Kinesis streams keep records long enough to recover from a stalled consumer.",
        resource_types=["aws:kinesis/stream:Stream"], validate=_stream_retention, severity=Severity.MEDIUM,
        remediation="Raise retention_period (hours).", enforcement_level=ADVISORY,
        config={"minimumHours": _number(24, "Shortest stream retention, in hours", 24)},
    ),
    resource_policy(
        "s3-bucket-versioning-enabled",
        "S3 buckets keep object versions, so an overwrite or delete can be undone.",
        resource_types=["aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"],
        validate=_versioning, severity=Severity.MEDIUM,
        remediation="Use aws.s3.BucketVersioning with versioning_configuration={\"status\": \"Enabled\"}.",
        enforcement_level=ADVISORY,
    ),
    resource_policy(
        "s3-bucket-lifecycle-archive-transition",
        "S3 lifecycle rules move objects to an archive storage class within a configured number of days.",
        resource_types=["aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"],
        validate=_lifecycle, severity=Severity.LOW,
        remediation="Add an enabled rule with a transition to GLACIER (filter {prefix: \"\"}).",
        enforcement_level=ADVISORY,
        config={"maximumDays": _number(365, "Latest day an archive transition may happen", 0)},
    ),
    resource_policy(
        "dynamodb-table-point-in-time-recovery",
        "DynamoDB tables have point-in-time recovery on.",
        resource_types=["aws:dynamodb/table:Table"], validate=_point_in_time_recovery, severity=Severity.HIGH,
        remediation="Set point_in_time_recovery={\"enabled\": True}.", enforcement_level=ADVISORY,
    ),
    resource_policy(
        "kms-key-deletion-window-minimum",
        "KMS keys wait long enough before deletion for a mistake to be undone.",
        resource_types=["aws:kms/key:Key"], validate=_deletion_window, severity=Severity.MEDIUM,
        remediation="Raise deletion_window_in_days (7-30).", enforcement_level=ADVISORY,
        config={"minimumDays": _number(7, "Shortest deletion window, in days", 7)},
    ),
]
