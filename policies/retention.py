"""Retention and recovery: how long data and logs are kept, and how they come back.

Mandatory by default: data that cannot be recovered, or logs kept forever, are
misconfigurations, not preferences. How long to keep things is a team's decision,
so each threshold is a setting. Two rules stay advisory, because throw-away
stacks (dev, CI) must be deletable: table deletion protection and a bucket's
force_destroy.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pulumi_policy import Severity

from policy_kit import (
    ADVISORY,
    MANDATORY,
    Properties,
    Report,
    Settings,
    as_list,
    get_path,
    integer_setting,
    is_known,
    is_unknown,
    resource_policy,
)

# The only values CloudWatch Logs accepts for retentionInDays.
CLOUDWATCH_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                             2557, 2922, 3288, 3653)
ARCHIVE_STORAGE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR")

retention_policy = partial(resource_policy, enforcement_level=MANDATORY, severity=Severity.MEDIUM)


def _log_retention(properties: Properties, settings: Settings, report: Report) -> None:
    days = properties.get("retentionInDays")
    if is_unknown(days):
        return
    low, high = settings["minimumDays"], settings["maximumDays"]
    if days in (None, 0):
        report("retentionInDays is not set: the log group keeps its logs forever")
    elif days not in CLOUDWATCH_RETENTION_DAYS:
        report(f"retentionInDays {days:g} is not a value CloudWatch Logs accepts")
    elif not low <= days <= high:
        report(f"retentionInDays {days:g} is outside the allowed {low}..{high} days")


def _stream_retention(properties: Properties, settings: Settings, report: Report) -> None:
    hours = properties.get("retentionPeriod", 24)  # AWS's default when unset
    if is_known(hours) and hours < settings["minimumHours"]:
        report(f"retentionPeriod {hours:g} h is below the minimum of {settings['minimumHours']} h")


def _versioning(properties: Properties, _settings: Settings, report: Report) -> None:
    status = get_path(properties, "versioningConfiguration.status")
    if is_known(status) and status != "Enabled":
        report(f"versioningConfiguration.status is {status!r}: set it to \"Enabled\"")


def _archives_in_time(rule: Any, maximum_days: int) -> bool:
    status = get_path(rule, "status")
    if is_known(status) and status != "Enabled":
        return False
    for transition in as_list(get_path(rule, "transitions")):
        days, storage_class = get_path(transition, "days"), get_path(transition, "storageClass")
        if storage_class in ARCHIVE_STORAGE_CLASSES or is_unknown(storage_class):
            if is_unknown(days) or (days is not None and days <= maximum_days):
                return True
    return False


def _lifecycle(properties: Properties, settings: Settings, report: Report) -> None:
    rules = properties.get("rules")
    if is_unknown(rules) or any(is_unknown(rule) or _archives_in_time(rule, settings["maximumDays"])
                                for rule in as_list(rules)):
        return
    report(f"no enabled lifecycle rule moves objects to an archive class ({', '.join(ARCHIVE_STORAGE_CLASSES)}) "
           f"within {settings['maximumDays']} days")


def _point_in_time_recovery(properties: Properties, _settings: Settings, report: Report) -> None:
    enabled = get_path(properties, "pointInTimeRecovery.enabled")
    if is_known(enabled) and enabled is not True:
        report("pointInTimeRecovery.enabled is not true: a bad write cannot be rolled back")


def _deletion_window(properties: Properties, settings: Settings, report: Report) -> None:
    days = properties.get("deletionWindowInDays", 30)  # AWS's default when unset
    if is_known(days) and days < settings["minimumDays"]:
        report(f"deletionWindowInDays {days:g} is below the minimum of {settings['minimumDays']}")


def _deletion_protection(properties: Properties, _settings: Settings, report: Report) -> None:
    enabled = properties.get("deletionProtectionEnabled")
    if is_known(enabled) and enabled is not True:
        report("deletionProtectionEnabled is not true: one mistaken delete loses the table")


def _no_force_destroy(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("forceDestroy") is True:
        report("forceDestroy is true: `pulumi destroy` deletes every object and version in the bucket")


POLICIES = [
    retention_policy(
        "cloudwatch-log-group-retention",
        "Log groups expire their logs after a number of days CloudWatch Logs accepts, within a configured range.",
        resource_types=["aws:cloudwatch/logGroup:LogGroup"], validate=_log_retention,
        remediation="Set retention_in_days to an accepted value (1, 3, 5, 7, 14, 30, 60, 90, ...) in the range.",
        config={"minimumDays": integer_setting(30, "Shortest retention allowed, in days", 1),
                "maximumDays": integer_setting(3653, "Longest retention allowed, in days", 1)}),
    retention_policy(
        "kinesis-stream-retention-minimum",
        "Kinesis streams keep records long enough to recover from a stalled consumer.",
        resource_types=["aws:kinesis/stream:Stream"], validate=_stream_retention,
        remediation="Raise retention_period (hours).",
        config={"minimumHours": integer_setting(24, "Shortest stream retention, in hours", 24)}),
    retention_policy(
        "s3-bucket-versioning-enabled", "S3 buckets keep object versions, so an overwrite or delete can be undone.",
        resource_types=["aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"],
        validate=_versioning,
        remediation="Use aws.s3.BucketVersioning with versioning_configuration={\"status\": \"Enabled\"}."),
    retention_policy(
        "s3-bucket-lifecycle-archive-transition",
        "S3 lifecycle rules move objects to an archive storage class within a configured number of days.",
        resource_types=["aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"],
        validate=_lifecycle, severity=Severity.LOW,
        remediation="Add an enabled rule (filter {\"prefix\": \"\"}) with a transition to GLACIER in time.",
        config={"maximumDays": integer_setting(365, "Latest day an archive transition may happen")}),
    retention_policy(
        "dynamodb-table-point-in-time-recovery", "DynamoDB tables have point-in-time recovery on.",
        resource_types=["aws:dynamodb/table:Table"], validate=_point_in_time_recovery, severity=Severity.HIGH,
        remediation="Set point_in_time_recovery={\"enabled\": True}."),
    retention_policy(
        "dynamodb-table-deletion-protection", "DynamoDB tables cannot be deleted without first lifting protection.",
        resource_types=["aws:dynamodb/table:Table"], validate=_deletion_protection,
        enforcement_level=ADVISORY,
        remediation="Set deletion_protection_enabled=True (disable the policy for throw-away stacks)."),
    retention_policy(
        "s3-bucket-force-destroy-disabled", "Buckets are not emptied and deleted by `pulumi destroy`.",
        resource_types=["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"], validate=_no_force_destroy,
        enforcement_level=ADVISORY,
        remediation="Leave force_destroy unset (disable the policy for throw-away stacks)."),
    retention_policy(
        "kms-key-deletion-window-minimum", "KMS keys wait long enough before deletion for a mistake to be undone.",
        resource_types=["aws:kms/key:Key"], validate=_deletion_window,
        remediation="Raise deletion_window_in_days (7-30).",
        config={"minimumDays": integer_setting(7, "Shortest deletion window, in days", 7)}),
]
