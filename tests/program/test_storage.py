"""The metrics table and the archive bucket."""

import pytest

from handler.layout import TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE
from tests.program.assertions import assert_input, policy_statements

TABLE = "aws:dynamodb/table:Table"
KEY_ARN_PREFIX = "arn:aws:kms:ap-southeast-1:123456789012:key/"


def test_table_is_on_demand_with_recovery_ttl_and_the_stack_key(dev):
    table = dev.one(TABLE)
    assert_input(table, "name", "sensor-metrics-dev")
    assert_input(table, "billingMode", "PAY_PER_REQUEST")
    assert_input(table, "pointInTimeRecovery", {"enabled": True})
    assert_input(table, "ttl", {"attributeName": TABLE_TTL_ATTRIBUTE, "enabled": True})
    assert_input(table, "serverSideEncryption.enabled", True)
    assert_input(table, "serverSideEncryption.kmsKeyArn", dev.one("aws:kms/key:Key").outputs["arn"])


def test_table_key_schema_serves_one_device_over_a_time_range(dev):
    table = dev.one(TABLE)
    assert_input(table, "hashKey", TABLE_PARTITION_KEY)
    assert_input(table, "rangeKey", TABLE_SORT_KEY)
    # Only key attributes may be declared.
    assert_input(table, "attributes", [{"name": TABLE_PARTITION_KEY, "type": "S"}, {"name": TABLE_SORT_KEY, "type": "S"}])
    assert "readCapacity" not in table.inputs and "writeCapacity" not in table.inputs


def test_table_deletion_protection_follows_the_stack(dev, prod):
    assert_input(dev.one(TABLE), "deletionProtectionEnabled", False)
    assert_input(prod.one(TABLE), "deletionProtectionEnabled", True)
    assert prod.one(TABLE).protect, f"{prod.one(TABLE).urn}: prod table is not protected"


@pytest.mark.parametrize("bucket_name, prefix", [
    ("iot-dev-storage-archive", "iot-sensor-data-dev-"),
    ("iot-dev-audit-logs", "iot-cloudtrail-logs-dev-"),
])
def test_buckets_are_uniquely_named_encrypted_versioned_private_and_archived(dev, bucket_name, prefix):
    bucket = dev.one("aws:s3/bucket:Bucket", f"{bucket_name}-bucket")
    assert_input(bucket, "bucketPrefix", prefix)
    assert len(prefix) <= 37
    assert "bucket" not in bucket.inputs, f"{bucket.urn}: a fixed bucket name can be taken in another account"
    for deprecated in ("serverSideEncryptionConfiguration", "versioning", "lifecycleRules", "policy", "acl"):
        assert deprecated not in bucket.inputs, f"{bucket.urn}: uses the deprecated inline {deprecated}"
    bucket_id = bucket.outputs["bucket"]

    encryption = dev.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{bucket_name}-encryption",
    )
    assert_input(encryption, "bucket", bucket_id)
    assert_input(encryption, "rules.0.bucketKeyEnabled", True)
    assert_input(encryption, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "aws:kms")
    assert encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith(KEY_ARN_PREFIX)

    versioning = dev.one("aws:s3/bucketVersioning:BucketVersioning", f"{bucket_name}-versioning")
    assert_input(versioning, "versioningConfiguration.status", "Enabled")

    lifecycle = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{bucket_name}-lifecycle")
    assert_input(lifecycle, "rules.0.status", "Enabled")
    assert_input(lifecycle, "rules.0.filter", {"prefix": ""})
    assert_input(lifecycle, "rules.0.transitions", [{"days": 90, "storageClass": "GLACIER"}])
    assert_input(lifecycle, "rules.0.noncurrentVersionTransitions", [{"noncurrentDays": 30, "storageClass": "GLACIER"}])
    assert versioning.urn in lifecycle.dependencies, f"{lifecycle.urn}: must wait for versioning"

    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{bucket_name}-public-access-block")
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert_input(block, setting, True)

    ownership = dev.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{bucket_name}-ownership")
    assert_input(ownership, "rule.objectOwnership", "BucketOwnerEnforced")

    policy = dev.one("aws:s3/bucketPolicy:BucketPolicy", f"{bucket_name}-policy")
    deny = policy_statements(policy)["DenyInsecureTransport"]
    bucket_arn = f"arn:aws:s3:::{bucket_id}"
    assert deny["Effect"] == "Deny"
    assert deny["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert block.urn in policy.dependencies, f"{policy.urn}: races the public access block (OperationAborted)"


def test_archive_expiration_follows_the_stack(dev, prod):
    dev_rule = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                       "iot-dev-storage-archive-lifecycle").inputs["rules"][0]
    assert dev_rule["expiration"] == {"days": 180}
    prod_rule = prod.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                         "iot-prod-storage-archive-lifecycle").inputs["rules"][0]
    assert "expiration" not in prod_rule, "prod keeps raw readings forever"


def test_only_dev_buckets_can_be_force_destroyed(dev, prod):
    for bucket in dev.of_type("aws:s3/bucket:Bucket"):
        assert_input(bucket, "forceDestroy", True)
    for bucket in prod.of_type("aws:s3/bucket:Bucket"):
        assert_input(bucket, "forceDestroy", False)
        assert bucket.protect, f"{bucket.urn}: prod bucket is not protected"
