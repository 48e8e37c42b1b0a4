"""Retention and recovery policies: the exact fixtures each fails at its default settings."""

import pytest

from tests.policies.conftest import UNKNOWN, PolicyCases, assert_verdicts, check_policy_cases, fails, passes

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def lifecycle_rule(days=90, storage_class="GLACIER", status="Enabled"):
    return {"id": "archive", "status": status, "filter": {"prefix": ""},
            "transitions": [{"days": days, "storageClass": storage_class}]}


CASES = [
    PolicyCases("cloudwatch-log-group-retention", "aws:cloudwatch/logGroup:LogGroup", [
        passes("month", {"retentionInDays": 30}), passes("ten-years", {"retentionInDays": 3653}),
        passes("unknown", {"retentionInDays": UNKNOWN}),
        fails("forever", {}), fails("zero", {"retentionInDays": 0}),
        fails("not-accepted", {"retentionInDays": 45}), fails("below-range", {"retentionInDays": 14}),
    ]),
    PolicyCases("kinesis-stream-retention-minimum", "aws:kinesis/stream:Stream", [
        passes("aws-default", {}), passes("day", {"retentionPeriod": 24}), passes("week", {"retentionPeriod": 168}),
        passes("unknown", {"retentionPeriod": UNKNOWN}),
    ]),
    PolicyCases("s3-bucket-versioning-enabled", "aws:s3/bucketVersioning:BucketVersioning", [
        passes("enabled", {"versioningConfiguration": {"status": "Enabled"}}),
        passes("unknown", {"versioningConfiguration": {"status": UNKNOWN}}),
        fails("suspended", {"versioningConfiguration": {"status": "Suspended"}}),
        fails("disabled", {"versioningConfiguration": {"status": "Disabled"}}),
    ]),
    PolicyCases("s3-bucket-lifecycle-archive-transition", LIFECYCLE, [
        passes("glacier-90", {"rules": [lifecycle_rule()]}),
        passes("deep-archive-365", {"rules": [lifecycle_rule(365, "DEEP_ARCHIVE")]}),
        passes("second-rule-archives", {"rules": [lifecycle_rule(30, "STANDARD_IA"), lifecycle_rule(180)]}),
        passes("unknown-days", {"rules": [lifecycle_rule(UNKNOWN)]}),
        fails("too-late", {"rules": [lifecycle_rule(400)]}),
        fails("disabled", {"rules": [lifecycle_rule(status="Disabled")]}),
        fails("infrequent-access-only", {"rules": [lifecycle_rule(30, "STANDARD_IA")]}),
        fails("no-rules", {"rules": []}),
    ]),
    PolicyCases("dynamodb-table-point-in-time-recovery", "aws:dynamodb/table:Table", [
        passes("on", {"pointInTimeRecovery": {"enabled": True}}),
        passes("unknown", {"pointInTimeRecovery": {"enabled": UNKNOWN}}),
        fails("unset", {}), fails("off", {"pointInTimeRecovery": {"enabled": False}}),
    ]),
    PolicyCases("dynamodb-table-deletion-protection", "aws:dynamodb/table:Table", [
        passes("on", {"deletionProtectionEnabled": True}),
        fails("off", {"deletionProtectionEnabled": False}), fails("unset", {}),
    ]),
    PolicyCases("s3-bucket-force-destroy-disabled", "aws:s3/bucket:Bucket", [
        passes("unset", {"bucketPrefix": "b-"}), passes("false", {"forceDestroy": False}),
        fails("force-destroy", {"forceDestroy": True}),
    ]),
    PolicyCases("kms-key-deletion-window-minimum", "aws:kms/key:Key", [
        passes("aws-default", {}), passes("minimum", {"deletionWindowInDays": 7}),
        passes("unknown", {"deletionWindowInDays": UNKNOWN}),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)


def test_thresholds_come_from_the_policy_config(project_pack):
    """A stricter config moves the line: 24 h of stream retention fails prod's 72 h minimum."""
    assert_verdicts(project_pack("prod"), "kinesis-stream-retention-minimum", "aws:kinesis/stream:Stream", [
        passes("week", {"retentionPeriod": 168}), fails("day", {"retentionPeriod": 24}),
    ])
    assert_verdicts(project_pack("prod"), "kms-key-deletion-window-minimum", "aws:kms/key:Key", [
        passes("thirty", {"deletionWindowInDays": 30}), fails("seven", {"deletionWindowInDays": 7}),
    ])
