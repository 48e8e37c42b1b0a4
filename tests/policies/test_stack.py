"""Stack policies on fixture stacks: the exact resources each fails, in first-preview form
(names and ARNs unknown, references carried by property dependencies) and with known values."""

from policycheck.analyzer import PolicyAnalyzer
from harness.stack_config import project_name
from tests.policies.conftest import KEY_ARN, UNKNOWN, allow, doc, resource

BUCKET = "aws:s3/bucket:Bucket"
COMPANION_TYPES = {
    "encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "versioning": "aws:s3/bucketVersioning:BucketVersioning",
    "block": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
}
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
STREAM = "aws:kinesis/stream:Stream"


def stack_failures(analyzer, policy, resources) -> dict[str, str]:
    """URN -> message of each violation of `policy` in one AnalyzeStack call."""
    return {v.urn: v.message.splitlines()[-1] for v in analyzer.analyze_stack(resources) if v.policy == policy}


def assert_stack_fails(analyzer, policy, resources, failing_names):
    failures = stack_failures(analyzer, policy, resources)
    expected = {r.urn for r in resources if r.name in failing_names}
    assert set(failures) == expected, (
        f"{policy}: unexpected failures {sorted(set(failures) - expected)} "
        f"({[failures[u] for u in set(failures) - expected]}), missing {sorted(expected - set(failures))}")


def bucket_with(companions: set[str], name: str, known: bool):
    bucket = resource(BUCKET, name, {"bucketPrefix": f"{name}-"})
    physical = f"{name}-20261125" if known else UNKNOWN
    others = [resource(COMPANION_TYPES[c], f"{name}-{c}", {"bucket": physical},
                      property_dependencies={"bucket": [bucket.urn]} if not known else {})
              for c in companions]
    if known:
        bucket = resource(BUCKET, name, {"bucket": physical})
    return [bucket, *others]


def test_bucket_without_a_companion_fails(analyzer):
    for known in (False, True):
        resources = (bucket_with({"encryption", "versioning", "block"}, "complete", known)
                     + bucket_with({"encryption", "versioning"}, "open", known)
                     + bucket_with(set(), "bare", known))
        assert_stack_fails(analyzer, "s3-bucket-companion-resources", resources, {"open", "bare"})


def test_function_without_its_own_log_group_with_retention_fails(analyzer):
    resources = [
        resource(FUNCTION, "logged", {"name": "logged"}),
        resource(LOG_GROUP, "logged-group", {"name": "/aws/lambda/logged", "retentionInDays": 30}),
        resource(FUNCTION, "configured", {"name": "configured", "loggingConfig": {"logGroup": "/custom/group"}}),
        resource(LOG_GROUP, "custom-group", {"name": "/custom/group", "retentionInDays": 30}),
        resource(FUNCTION, "forever", {"name": "forever"}),
        resource(LOG_GROUP, "forever-group", {"name": "/aws/lambda/forever"}),
        resource(FUNCTION, "bare", {"name": "bare"}),
    ]
    assert_stack_fails(analyzer, "lambda-function-log-group", resources, {"forever", "bare"})


def test_encryption_with_a_key_from_elsewhere_fails(analyzer):
    key = resource("aws:kms/key:Key", "key", {"enableKeyRotation": True})
    alias = resource("aws:kms/alias:Alias", "alias", {"name": "alias/ours", "targetKeyId": UNKNOWN},
                     property_dependencies={"targetKeyId": [key.urn]})
    resources = [
        key, alias,
        resource(STREAM, "our-key", {"kmsKeyId": UNKNOWN}, property_dependencies={"kmsKeyId": [key.urn]}),
        resource(STREAM, "our-alias", {"kmsKeyId": "alias/ours"}, property_dependencies={"kmsKeyId": [alias.urn]}),
        resource(STREAM, "foreign", {"kmsKeyId": "arn:aws:kms:ap-southeast-1:999999999999:key/x"}),
        resource(STREAM, "unencrypted", {}),
        resource("aws:dynamodb/table:Table", "foreign-table",
                 {"serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN}}),
    ]
    assert_stack_fails(analyzer, "kms-key-from-this-stack", resources, {"foreign", "foreign-table"})


def test_a_key_named_in_config_is_allowed(analyzer):
    foreign = resource(STREAM, "allowed-foreign", {"kmsKeyId": KEY_ARN})
    assert set(stack_failures(analyzer, "kms-key-from-this-stack", [foreign])) == {foreign.urn}
    with PolicyAnalyzer(project_name(), "test", preview=False) as configured:
        configured.configure({"all": "mandatory", "kms-key-from-this-stack": {"allowedKeyArns": [KEY_ARN]}})
        assert stack_failures(configured, "kms-key-from-this-stack", [foreign]) == {}


BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
SSE_S3_RULES = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
KMS_RULES = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN},
              "bucketKeyEnabled": True}]
TLS_DENY = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
            "Resource": ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
LOG_DELIVERY = {"Sid": "S3ServerAccessLogsWrite", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::logs/data/*"],
                "Condition": {"ArnLike": {"aws:SourceArn": ["arn:aws:s3:::data"]},
                              "StringEquals": {"aws:SourceAccount": "123456789012"}}}


def access_log_stack(known: bool, *, data_rules=KMS_RULES, log_rules=SSE_S3_RULES, logs_into="logs",
                     log_statements=(TLS_DENY, LOG_DELIVERY), log_policy=True, extra=()):
    """A data bucket logging into a log bucket, as in components/access_logs.py; names known or not."""
    buckets = {name: resource(BUCKET, name, {"bucket": name} if known else {"bucketPrefix": f"{name}-"})
               for name in ("data", "logs")}

    def naming(name: str, properties: dict, **targets: str):
        values = {prop: (target if known else UNKNOWN) for prop, target in targets.items()}
        return resource(properties.pop("_type"), name, {**properties, **values},
                        property_dependencies={prop: [buckets[target].urn] for prop, target in targets.items()})

    resources = [
        *buckets.values(),
        naming("data-encryption", {"_type": COMPANION_TYPES["encryption"], "rules": data_rules}, bucket="data"),
        naming("logs-encryption", {"_type": COMPANION_TYPES["encryption"], "rules": log_rules}, bucket="logs"),
    ]
    if logs_into:
        resources.append(naming("data-logging", {"_type": LOGGING, "targetPrefix": "data/"},
                                bucket="data", targetBucket=logs_into))
    if log_policy:
        resources.append(naming("logs-policy", {"_type": BUCKET_POLICY, "policy": doc(*log_statements) if known
                                                else UNKNOWN}, bucket="logs"))
    return resources + [build(buckets, naming) for build in extra]


def test_sse_s3_is_allowed_only_for_an_access_log_target_only_log_delivery_writes(analyzer):
    policy = "s3-bucket-sse-s3-only-for-access-logs"
    role_writes_logs = lambda buckets, naming: resource(  # noqa: E731
        "aws:iam/rolePolicy:RolePolicy", "writer-policy",
        {"role": "r", "policy": doc(allow(["s3:PutObject"], ["arn:aws:s3:::logs/*"]))},
        property_dependencies={"policy": [buckets["logs"].urn]})
    logs_itself = lambda buckets, naming: naming(  # noqa: E731
        "logs-logging", {"_type": LOGGING, "targetPrefix": "self/"}, bucket="logs", targetBucket="logs")
    for known in (True, False):
        assert_stack_fails(analyzer, policy, access_log_stack(known), set())
        assert_stack_fails(analyzer, policy, access_log_stack(known, data_rules=SSE_S3_RULES), {"data-encryption"})
        assert_stack_fails(analyzer, policy, access_log_stack(known, logs_into=""), {"logs-encryption"})
        assert_stack_fails(analyzer, policy, access_log_stack(known, log_policy=False), {"logs-encryption"})
        assert_stack_fails(analyzer, policy, access_log_stack(known, extra=[logs_itself]), {"logs-encryption"})
        assert_stack_fails(analyzer, policy, access_log_stack(known, extra=[role_writes_logs]), {"writer-policy"})
    # Policy documents are judged where they are known (an update); a first preview cannot read them.
    anyone_writes = {**LOG_DELIVERY, "Sid": "TeamWrites", "Principal": {"AWS": "arn:aws:iam::123456789012:role/team"}}
    assert_stack_fails(analyzer, policy, access_log_stack(True, log_statements=(TLS_DENY, LOG_DELIVERY, anyone_writes)),
                       {"logs-policy"})
    log_delivery_deletes = {**LOG_DELIVERY, "Action": ["s3:PutObject", "s3:DeleteObject"]}
    assert_stack_fails(analyzer, policy, access_log_stack(True, log_statements=(TLS_DENY, log_delivery_deletes)),
                       {"logs-policy"})
    assert_stack_fails(analyzer, policy, access_log_stack(True, log_statements=(TLS_DENY,)), {"logs-policy"})
    # The exemption is what the bucket is, never what it is called or tagged.
    disguised = [resource(BUCKET, "access-logs", {"bucket": "access-logs", "tags": {"Purpose": "access-logs"}}),
                 resource(COMPANION_TYPES["encryption"], "access-logs-encryption",
                          {"bucket": "access-logs", "rules": SSE_S3_RULES})]
    assert_stack_fails(analyzer, policy, disguised, {"access-logs-encryption"})


def test_every_bucket_but_an_access_log_target_logs_its_requests(analyzer):
    policy = "s3-bucket-server-access-logging"
    for known in (True, False):
        assert_stack_fails(analyzer, policy, access_log_stack(known), set())
        # Without the logging configuration, the data bucket is unlogged and the log bucket no target.
        assert_stack_fails(analyzer, policy, access_log_stack(known, logs_into=""), {"data", "logs"})
    unlogged = resource(BUCKET, "other", {"bucket": "other"})
    assert_stack_fails(analyzer, policy, access_log_stack(True) + [unlogged], {"other"})


TRAIL = "aws:cloudtrail/trail:Trail"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TRAIL_GROUP = "/aws/cloudtrail/t"


def cis_stack(known: bool, *, drop_filter: str = "", silent_alarm: str = "", patterns: dict | None = None,
              group_of_filters: str = TRAIL_GROUP, delivery: bool = True):
    """A trail delivering to its group, with one filter and one alarm per CIS event (the program's patterns)."""
    from components.audit import SECURITY_EVENTS

    group = resource(LOG_GROUP, "trail-group", {"name": TRAIL_GROUP, "retentionInDays": 30})
    other = resource(LOG_GROUP, "other-group", {"name": "/other", "retentionInDays": 30})
    groups = {TRAIL_GROUP: group, "/other": other}
    delivered = {"cloudWatchLogsGroupArn": f"arn:aws:logs:ap-southeast-1:123456789012:log-group:{TRAIL_GROUP}:*"
                 if known else UNKNOWN} if delivery else {}
    trail = resource(TRAIL, "trail", {"name": "t", **delivered},
                     property_dependencies={"cloudWatchLogsGroupArn": [group.urn]} if delivery else {})
    resources = [group, other, trail]
    for event in SECURITY_EVENTS:
        if event.role == drop_filter:
            continue
        metric = {"name": f"m-{event.role}", "namespace": "ns", "value": "1"}
        resources.append(resource(METRIC_FILTER, f"{event.role}-filter", {
            "logGroupName": group_of_filters if known else UNKNOWN,
            "pattern": (patterns or {}).get(event.role, event.pattern), "metricTransformation": metric},
            property_dependencies={"logGroupName": [groups[group_of_filters].urn]}))
        actions = [] if event.role == silent_alarm else ["arn:aws:sns:ap-southeast-1:123456789012:alarms"]
        resources.append(resource(ALARM, f"{event.role}-alarm", {
            "namespace": "ns", "metricName": f"m-{event.role}", "alarmActions": actions}))
    return resources


def test_a_trail_without_every_cis_alarm_on_its_group_fails(analyzer):
    policy = "cloudtrail-cis-metric-alarms"
    for known in (True, False):
        assert_stack_fails(analyzer, policy, cis_stack(known), set())
        assert_stack_fails(analyzer, policy, cis_stack(known, drop_filter="root-account-use"), {"trail"})
        assert_stack_fails(analyzer, policy, cis_stack(known, silent_alarm="iam-policy-changes"), {"trail"})
        assert_stack_fails(analyzer, policy, cis_stack(known, group_of_filters="/other"), {"trail"})
        assert_stack_fails(analyzer, policy, cis_stack(known, patterns={
            "kms-key-disabled-or-deleted": "{ ($.eventSource = kms.amazonaws.com) && ($.eventName = DisableKey) }"}),
            {"trail"})
        # No delivery is cloudtrail-trail-cloudwatch-logs' finding, not this one's.
        assert_stack_fails(analyzer, policy, cis_stack(known, delivery=False), set())
    failures = stack_failures(analyzer, policy, cis_stack(True, drop_filter="root-account-use"))
    assert list(failures.values()) == ["trail trail delivers to trail-group, but no metric filter there with an alarm "
                                       "that notifies someone catches: root account use (CIS AWS Foundations 4.x)"]
