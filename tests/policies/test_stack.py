"""Stack policies on fixture stacks: the exact resources each fails, in first-preview form
(names and ARNs unknown, references carried by property dependencies) and with known values."""

from offline.analyzer import PolicyAnalyzer
from offline.stack_config import project_name
from tests.policies.conftest import KEY_ARN, UNKNOWN, resource

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
