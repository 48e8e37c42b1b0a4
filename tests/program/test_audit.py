"""CloudTrail, its bucket, its CloudWatch Logs delivery with the CIS alarms, Object Lock
in prod, and the server access logs of the stack's buckets."""

import json

import pulumi
import pytest

from components.audit import SECURITY_EVENTS
from harness.mocks import run_program
from tests.program.assertions import assert_input, policy_statements

TRAIL = "aws:cloudtrail/trail:Trail"
TRAIL_ARN = "arn:aws:cloudtrail:ap-southeast-1:123456789012:trail/iot-audit-trail-dev"


def test_trail_is_multi_region_validated_encrypted_with_insights(dev):
    trail = dev.one(TRAIL)
    assert_input(trail, "name", "iot-audit-trail-dev")
    assert_input(trail, "isMultiRegionTrail", True)
    assert_input(trail, "includeGlobalServiceEvents", True)
    assert_input(trail, "enableLogFileValidation", True)
    assert_input(trail, "enableLogging", True)
    assert_input(trail, "kmsKeyId", dev.one("aws:kms/key:Key").outputs["arn"])
    assert_input(trail, "insightSelectors", [{"insightType": "ApiCallRateInsight"}, {"insightType": "ApiErrorRateInsight"}])
    bucket = dev.one("aws:s3/bucket:Bucket", "iot-dev-audit-logs-bucket")
    assert_input(trail, "s3BucketName", bucket.outputs["bucket"])


def test_trail_is_created_after_its_bucket_policy(dev):
    policy = dev.one("aws:s3/bucketPolicy:BucketPolicy", "iot-dev-audit-logs-policy")
    assert policy.urn in dev.one(TRAIL).dependencies


def test_trail_bucket_policy_lets_exactly_this_trail_write(dev):
    policy = dev.one("aws:s3/bucketPolicy:BucketPolicy", "iot-dev-audit-logs-policy")
    bucket_arn = f"arn:aws:s3:::{dev.one('aws:s3/bucket:Bucket', 'iot-dev-audit-logs-bucket').outputs['bucket']}"
    statements = policy_statements(policy)
    acl = statements["CloudTrailChecksAcl"]
    assert acl["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert acl["Action"] == ["s3:GetBucketAcl"]
    assert acl["Resource"] == [bucket_arn]
    assert acl["Condition"] == {"StringEquals": {"aws:SourceArn": TRAIL_ARN}}
    write = statements["CloudTrailWritesLogs"]
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == [f"{bucket_arn}/AWSLogs/123456789012/*"]
    assert write["Condition"] == {
        "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": TRAIL_ARN}
    }


def test_archive_bucket_policy_grants_nothing_beyond_tls(dev):
    statements = policy_statements(dev.one("aws:s3/bucketPolicy:BucketPolicy", "iot-dev-storage-archive-policy"))
    assert set(statements) == {"DenyInsecureTransport"}

ACCOUNT = "123456789012"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TRAIL_GROUP_NAME = "/aws/cloudtrail/iot-audit-trail-{suffix}"
CIS_ROLES = {"unauthorized-api-calls", "console-sign-in-without-mfa", "root-account-use", "iam-policy-changes",
             "cloudtrail-configuration-changes", "kms-key-disabled-or-deleted", "s3-bucket-policy-changes"}
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"


@pytest.fixture(scope="module")
def stacks(dev, prod):
    return {"dev": dev, "prod": prod}


@pytest.fixture(scope="module")
def without_trail(program_run):
    return program_run("dev", config_overrides={"auditTrail": "none"})


@pytest.mark.parametrize("stack, retention", [("dev", 30), ("prod", 365)])
def test_trail_delivers_to_its_encrypted_expiring_log_group(stacks, stack, retention):
    run = stacks[stack]
    group = run.one(LOG_GROUP, f"iot-{stack}-audit-trail-log-group")
    group_name = TRAIL_GROUP_NAME.format(suffix=stack)
    assert_input(group, "name", group_name)
    assert_input(group, "retentionInDays", retention)
    assert_input(group, "kmsKeyId", run.one("aws:kms/key:Key").outputs["arn"])
    trail = run.one(TRAIL)
    assert_input(trail, "cloudWatchLogsGroupArn", f"{group.outputs['arn']}:*")
    role = run.one("aws:iam/role:Role", f"iot-{stack}-audit-delivery-role")
    assert_input(trail, "cloudWatchLogsRoleArn", role.outputs["arn"])
    policy = run.one("aws:iam/rolePolicy:RolePolicy", f"iot-{stack}-audit-delivery-role-policy")
    assert policy.urn in trail.dependencies, f"{trail.urn}: CloudTrail tries the role when the trail is created"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_delivery_role_is_trusted_by_this_trail_only_and_writes_to_its_group_only(stacks, stack):
    run = stacks[stack]
    trail_arn = f"arn:aws:cloudtrail:ap-southeast-1:{ACCOUNT}:trail/iot-audit-trail-{stack}"
    role = run.one("aws:iam/role:Role", f"iot-{stack}-audit-delivery-role")
    assert policy_statements(role, "assumeRolePolicy") == {"TrustThisTrail": {
        "Sid": "TrustThisTrail", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceArn": trail_arn, "aws:SourceAccount": ACCOUNT}},
    }}
    policy = run.one("aws:iam/rolePolicy:RolePolicy", f"iot-{stack}-audit-delivery-role-policy")
    group_arn = f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:{TRAIL_GROUP_NAME.format(suffix=stack)}"
    assert policy_statements(policy) == {"DeliverTrailEvents": {
        "Sid": "DeliverTrailEvents", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [f"{group_arn}:log-stream:*"],
    }}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cis_metric_filters_watch_the_trail_group_and_alarm_the_alarm_topic(stacks, stack):
    run = stacks[stack]
    assert {event.role for event in SECURITY_EVENTS} >= CIS_ROLES
    topic_arn = run.one("aws:sns/topic:Topic").outputs["arn"]
    group_name = TRAIL_GROUP_NAME.format(suffix=stack)
    namespace = f"IotPipeline/Audit/{stack}"
    for event in SECURITY_EVENTS:
        metric = f"iot-audit-{event.role}-{stack}"
        metric_filter = run.one("aws:cloudwatch/logMetricFilter:LogMetricFilter", f"iot-{stack}-audit-{event.role}-filter")
        assert_input(metric_filter, "logGroupName", group_name)
        assert_input(metric_filter, "pattern", event.pattern)
        assert_input(metric_filter, "metricTransformation", {"name": metric, "namespace": namespace, "value": "1"})
        alarm = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", f"iot-{stack}-audit-{event.role}-alarm")
        assert_input(alarm, "name", f"iot-pipeline-{event.role}_{stack}")
        assert_input(alarm, "namespace", namespace)
        assert_input(alarm, "metricName", metric)
        assert_input(alarm, "statistic", "Sum")
        assert_input(alarm, "threshold", 1)
        assert_input(alarm, "comparisonOperator", "GreaterThanOrEqualToThreshold")
        assert_input(alarm, "alarmActions", [topic_arn])
        assert "dimensions" not in alarm.inputs, f"{alarm.urn}: the filter's metric has no dimensions"


@pytest.mark.parametrize("role, fragment", [
    ("unauthorized-api-calls", '($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")'),
    ("console-sign-in-without-mfa", '($.additionalEventData.MFAUsed != "Yes")'),
    ("root-account-use", '$.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS'),
    ("iam-policy-changes", "($.eventName = AttachRolePolicy)"),
    ("cloudtrail-configuration-changes", "($.eventName = StopLogging)"),
    ("kms-key-disabled-or-deleted", "($.eventName = ScheduleKeyDeletion)"),
    ("s3-bucket-policy-changes", "($.eventName = PutBucketPolicy)"),
])
def test_cis_filter_patterns_match_the_benchmark(role, fragment):
    pattern = {event.role: event.pattern for event in SECURITY_EVENTS}[role]
    assert fragment in pattern
    assert pattern.count("(") == pattern.count(")") and pattern.startswith("{") and pattern.endswith("}")


def test_prod_trail_bucket_refuses_deletion_with_object_lock_on_the_existing_bucket(prod):
    bucket = prod.one("aws:s3/bucket:Bucket", "iot-prod-audit-logs-bucket")
    # On the bucket itself the argument would replace the bucket, logs and all.
    assert "objectLockEnabled" not in bucket.inputs and "objectLockConfiguration" not in bucket.inputs
    lock = prod.one(OBJECT_LOCK)
    assert_input(lock, "bucket", bucket.outputs["bucket"])
    assert_input(lock, "objectLockEnabled", "Enabled")
    assert_input(lock, "rule", {"defaultRetention": {"mode": "COMPLIANCE", "days": 365}})
    versioning = prod.one("aws:s3/bucketVersioning:BucketVersioning", "iot-prod-audit-logs-versioning")
    assert versioning.urn in lock.dependencies, f"{lock.urn}: Object Lock needs versioning on first"


def test_dev_trail_bucket_has_no_object_lock(dev):
    assert dev.of_type(OBJECT_LOCK) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_access_logs_of_archive_and_trail_buckets_go_to_an_sse_s3_bucket_only_log_delivery_writes(stacks, stack):
    run = stacks[stack]
    log_bucket = run.one("aws:s3/bucket:Bucket", f"iot-{stack}-access-logs-bucket-bucket")
    assert_input(log_bucket, "bucketPrefix", f"iot-s3-access-logs-{stack}-")
    log_name = log_bucket.outputs["bucket"]
    encryption = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                         f"iot-{stack}-access-logs-bucket-encryption")
    assert_input(encryption, "rules", [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}])
    sources = {"archive": run.one("aws:s3/bucket:Bucket", f"iot-{stack}-storage-archive-bucket"),
               "audit": run.one("aws:s3/bucket:Bucket", f"iot-{stack}-audit-logs-bucket")}
    loggings = {r.name: r for r in run.of_type(BUCKET_LOGGING)}
    assert set(loggings) == {f"iot-{stack}-access-logs-{source}" for source in sources}
    for source, bucket in sources.items():
        logging = loggings[f"iot-{stack}-access-logs-{source}"]
        assert_input(logging, "bucket", bucket.outputs["bucket"])
        assert_input(logging, "targetBucket", log_name)
        assert_input(logging, "targetPrefix", f"{source}/")
        assert_input(logging, "targetObjectKeyFormat", {"partitionedPrefix": {"partitionDateSource": "EventTime"}})
    statements = policy_statements(run.one("aws:s3/bucketPolicy:BucketPolicy", f"iot-{stack}-access-logs-bucket-policy"))
    assert set(statements) == {"DenyInsecureTransport", "S3ServerAccessLogsWrite"}
    write = statements["S3ServerAccessLogsWrite"]
    assert write["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == [f"arn:aws:s3:::{log_name}/archive/*", f"arn:aws:s3:::{log_name}/audit/*"]
    assert write["Condition"] == {
        "ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{b.outputs['bucket']}" for b in sources.values()]},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    # The log bucket neither logs to itself nor carries Object Lock default retention (S3 refuses both).
    assert all(logging.inputs["bucket"] != log_name for logging in loggings.values())
    assert all(lock.inputs["bucket"] != log_name for lock in run.of_type(OBJECT_LOCK))


def test_audit_trail_none_leaves_the_trail_to_the_organization(without_trail):
    for type_token in (TRAIL, OBJECT_LOCK, "aws:cloudwatch/logMetricFilter:LogMetricFilter"):
        assert without_trail.of_type(type_token) == [], f"auditTrail: none still declares {type_token}"
    buckets = {r.name for r in without_trail.of_type("aws:s3/bucket:Bucket")}
    assert buckets == {"iot-dev-storage-archive-bucket", "iot-dev-access-logs-bucket-bucket"}
    assert [r.name for r in without_trail.of_type(BUCKET_LOGGING)] == ["iot-dev-access-logs-archive"]
    assert "auditBucketName" not in without_trail.stack_outputs


@pytest.mark.parametrize("overrides, key, allowed", [
    ({"auditTrail": "org"}, "auditTrail", "create (the stack's own trail) or none"),
    ({"auditObjectLockMode": "STRICT"}, "auditObjectLockMode", "one of NONE, GOVERNANCE, COMPLIANCE"),
    ({"auditTrail": "none", "auditObjectLockMode": "GOVERNANCE"}, "auditObjectLockMode",
     "NONE when auditTrail is none"),
    ({"auditObjectLockMode": "GOVERNANCE", "auditObjectLockDays": 400}, "auditObjectLockDays",
     "at most auditExpirationDays (365)"),
    ({"auditObjectLockDays": 0}, "auditObjectLockDays", "a whole number from 1 to 36500"),
])
def test_audit_settings_are_validated_with_the_key_named(overrides, key, allowed):
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config_overrides=overrides)
    problems = [line for line in str(raised.value).splitlines() if f"config `{key}` = " in line]
    assert len(problems) == 1 and f"is not allowed: {allowed}" in problems[0], str(raised.value)
    assert str(overrides[key]) in problems[0]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_key_policy_lets_cloudwatch_logs_use_the_key_for_the_trail_group(stacks, stack):
    run = stacks[stack]
    group_arn = f"arn:aws:logs:ap-southeast-1:{ACCOUNT}:log-group:{TRAIL_GROUP_NAME.format(suffix=stack)}"
    logs_grants = [s for s in json.loads(run.one("aws:kms/key:Key").inputs["policy"])["Statement"]
                   if str(s.get("Principal", {}).get("Service", "")).startswith("logs.")]
    assert logs_grants, "the key policy has no statement for CloudWatch Logs"
    for grant in logs_grants:
        values = [v for keys in grant["Condition"].values() for vs in keys.values()
                  for v in (vs if isinstance(vs, list) else [vs])]
        assert group_arn in values, f"{grant.get('Sid')}: CloudWatch Logs cannot encrypt {group_arn}: {values}"
