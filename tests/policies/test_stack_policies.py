"""Stack policies on fixture stacks: the exact resources they fail."""

from tests.policies.conftest import fixture

KEY_URN_NAME = "key"


def _stack_failures(analyzer, policy, resources):
    return {v.urn.rsplit("::", 1)[-1] for v in analyzer.analyze_stack(resources) if v.policy == policy}


def _bucket_with(companions: set[str], name: str):
    bucket = fixture("aws:s3/bucket:Bucket", name, {"bucketPrefix": f"{name}-"})
    types = {
        "encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "versioning": "aws:s3/bucketVersioning:BucketVersioning",
        "block": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    }
    others = [fixture(types[c], f"{name}-{c}", {"bucket": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},
                      property_dependencies={"bucket": [bucket.urn]}) for c in companions]
    return [bucket, *others]


def test_bucket_without_a_companion_fails(analyzer):
    resources = (_bucket_with({"encryption", "versioning", "block"}, "complete")
                 + _bucket_with({"encryption", "versioning"}, "open")
                 + _bucket_with(set(), "bare"))
    assert _stack_failures(analyzer, "s3-bucket-companion-resources", resources) == {"open", "bare"}


def test_function_without_its_own_log_group_fails(analyzer):
    good = fixture("aws:lambda/function:Function", "logged", {"name": "logged"})
    group = fixture("aws:cloudwatch/logGroup:LogGroup", "logged-group", {"name": "/aws/lambda/logged", "retentionInDays": 30})
    forever = fixture("aws:lambda/function:Function", "forever", {"name": "forever"})
    forever_group = fixture("aws:cloudwatch/logGroup:LogGroup", "forever-group", {"name": "/aws/lambda/forever"})
    bare = fixture("aws:lambda/function:Function", "bare", {"name": "bare"})
    assert _stack_failures(analyzer, "lambda-function-log-group",
                           [good, group, forever, forever_group, bare]) == {"forever", "bare"}


def test_encryption_with_a_foreign_key_fails(analyzer):
    key = fixture("aws:kms/key:Key", KEY_URN_NAME, {"enableKeyRotation": True})
    ours = fixture("aws:kinesis/stream:Stream", "ours", {"kmsKeyId": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},
                   property_dependencies={"kmsKeyId": [key.urn]})
    foreign = fixture("aws:kinesis/stream:Stream", "foreign", {"kmsKeyId": "arn:aws:kms:r:999:key/x"})
    unencrypted = fixture("aws:kinesis/stream:Stream", "unencrypted", {})
    assert _stack_failures(analyzer, "kms-key-from-this-stack", [key, ours, foreign, unencrypted]) == {"foreign"}
