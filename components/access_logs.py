"""S3 server access logs (CIS AWS Foundations 3.6): who read, wrote or deleted what in
the stack's buckets, kept in a bucket of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import statement
from components.secure_bucket import BucketDeletion, BucketRetention, SecureBucket, SecureBucketArgs

LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"


def log_prefix(source: str) -> str:
    return f"{source}/"


@dataclass
class AccessLogsArgs:
    context: StackContext
    # The buckets whose requests are logged, by a short name that becomes their log prefix.
    sources: Mapping[str, aws.s3.Bucket]
    retention: BucketRetention
    deletion: BucketDeletion


class AccessLogs(pulumi.ComponentResource):
    """The log bucket and each source bucket's logging configuration.

    S3 delivers server access logs only into a bucket encrypted with SSE-S3, in the
    same account and region, without Object Lock default retention: this bucket is
    the stack's one exception to the customer-managed key, and nothing but the log
    delivery service, for these source buckets, may write into it. It does not log
    its own requests (that would log every log delivery, forever).
    """

    bucket: SecureBucket
    loggings: dict[str, aws.s3.BucketLogging]

    def __init__(self, name: str, args: AccessLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:AccessLogs", name, None, opts)
        context = args.context
        sources = dict(args.sources)

        def log_delivery_writes(bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
            return [statement(
                "S3ServerAccessLogsWrite", ["s3:PutObject"],
                [pulumi.Output.concat(bucket_arn, f"/{log_prefix(source)}*") for source in sources],
                principal={"Service": LOG_DELIVERY_SERVICE},
                # Only for this stack's source buckets, in this account (confused-deputy protection).
                condition={
                    "ArnLike": {"aws:SourceArn": [bucket.arn for bucket in sources.values()]},
                    "StringEquals": {"aws:SourceAccount": context.account_id},
                },
            )]

        self.bucket = SecureBucket(
            f"{name}-bucket",
            SecureBucketArgs(
                bucket_prefix=f"iot-s3-access-logs-{context.suffix}-",
                kms_key_arn=None,
                access_log_target=True,
                tags=context.tags,
                retention=args.retention,
                deletion=args.deletion,
                extra_policy_statements=log_delivery_writes,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.loggings = {
            source: aws.s3.BucketLogging(
                f"{name}-{source}",
                bucket=bucket.id,
                target_bucket=self.bucket.bucket.id,
                target_prefix=log_prefix(source),
                # Date-partitioned keys: a day's logs are one prefix to query or expire.
                target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
                # S3 checks nothing at PutBucketLogging; deliveries fail until the policy is in place.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket.policy]),
            )
            for source, bucket in sources.items()
        }
        self.register_outputs({"bucketName": self.bucket.bucket.bucket})
