"""CloudTrail and its bucket."""

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
