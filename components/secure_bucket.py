"""An S3 bucket with every protection the pipeline's data needs, as pulumi-aws 7.x resources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.iam import document, statement


@dataclass(frozen=True)
class BucketRetention:
    """How long objects stay, and when they move to Glacier Flexible Retrieval."""

    transition_days: int
    noncurrent_transition_days: int
    # 0 keeps objects forever.
    expiration_days: int


@dataclass(frozen=True)
class BucketDeletion:
    """What `pulumi destroy` may do to a bucket."""

    # Pulumi refuses to delete the bucket until it is unprotected.
    protect: bool
    # `pulumi destroy` deletes the bucket with every object it still holds.
    force_destroy: bool


# The bucket policy's statements beside the TLS-only deny, given the bucket's ARN.
PolicyStatements = Callable[[pulumi.Output[str]], Sequence[dict[str, Any]]]


@dataclass
class SecureBucketArgs:
    bucket_prefix: str
    # The stack's key; None only for a server access log target (below).
    kms_key_arn: Optional[pulumi.Input[str]]
    tags: dict[str, str]
    retention: BucketRetention
    deletion: BucketDeletion
    extra_policy_statements: Optional[PolicyStatements] = None
    # S3 delivers server access logs only into a bucket encrypted with SSE-S3
    # (AES256): the one bucket the customer key cannot encrypt. Its policy must
    # let only logging.s3.amazonaws.com write (the pack checks both).
    access_log_target: bool = False

    def __post_init__(self) -> None:
        if self.access_log_target != (self.kms_key_arn is None):
            raise ValueError(
                f"SecureBucketArgs for {self.bucket_prefix!r}: kms_key_arn must be set (the stack's key), and left "
                "None only with access_log_target=True (S3 writes server access logs only with SSE-S3)")


class SecureBucket(pulumi.ComponentResource):
    """SSE-KMS with a bucket key (SSE-S3 for a server access log target only), versioning,
    lifecycle to Glacier, no public access, bucket-owner-enforced ownership and a policy
    that refuses plain HTTP.

    The name is a prefix plus a suffix AWS makes unique: bucket names are
    global across all accounts, so a fixed name could already be taken.
    """

    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=args.bucket_prefix,
            force_destroy=args.deletion.force_destroy,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion.protect),
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[self._encryption_rule(args)],
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[self._lifecycle_rule(args.retention)],
            # S3 applies noncurrent-version rules only once versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=document(*self._policy_statements(self.bucket.arn, args)),
            # A bucket policy written while the public access block is being
            # set fails with OperationAborted: serialize them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block, self.ownership]),
        )
        self.register_outputs({"bucketName": self.bucket.bucket, "bucketArn": self.bucket.arn})

    @staticmethod
    def _encryption_rule(args: SecureBucketArgs) -> aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict:
        if args.access_log_target:
            return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
        return {
            "apply_server_side_encryption_by_default": {
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": args.kms_key_arn,
            },
            "bucket_key_enabled": True,
        }

    @staticmethod
    def _lifecycle_rule(retention: BucketRetention) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
        rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
            "id": "archive-to-glacier",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "transitions": [{"days": retention.transition_days, "storage_class": "GLACIER"}],
            "noncurrent_version_transitions": [
                {"noncurrent_days": retention.noncurrent_transition_days, "storage_class": "GLACIER"}
            ],
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }
        if retention.expiration_days:
            rule["expiration"] = {"days": retention.expiration_days}
            rule["noncurrent_version_expiration"] = {"noncurrent_days": retention.expiration_days}
        return rule

    @staticmethod
    def _policy_statements(bucket_arn: pulumi.Output[str], args: SecureBucketArgs) -> list[dict[str, Any]]:
        deny_plain_http = statement(
            "DenyInsecureTransport",
            ["s3:*"],
            [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
            effect="Deny",
            principal={"AWS": "*"},
            condition={"Bool": {"aws:SecureTransport": "false"}},
        )
        extra = args.extra_policy_statements(bucket_arn) if args.extra_policy_statements else []
        return [deny_plain_http, *extra]
