"""The audit trail: CloudTrail with Insights, into its own encrypted bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import statement
from components.secure_bucket import BucketRetention, SecureBucket, SecureBucketArgs


def trail_name(suffix: str) -> str:
    """Explicit, so the trail's ARN is known (to the key and bucket policies) before it exists."""
    return f"iot-audit-trail-{suffix}"


@dataclass
class AuditArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    log_retention: BucketRetention = BucketRetention()


class Audit(pulumi.ComponentResource):
    """A multi-region trail with log file validation and API call/error rate Insights."""

    trail: aws.cloudtrail.Trail
    bucket: SecureBucket

    def __init__(self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Audit", name, None, opts)
        context = args.context
        name_of_trail = trail_name(context.suffix)
        trail_arn = context.arn("cloudtrail", f"trail/{name_of_trail}")
        only_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}

        def trail_reads_acl(bucket_arn: str) -> dict:
            return statement(
                "CloudTrailChecksAcl", ["s3:GetBucketAcl"], [bucket_arn],
                principal={"Service": "cloudtrail.amazonaws.com"}, condition=only_this_trail,
            )

        def trail_writes_logs(bucket_arn: str) -> dict:
            return statement(
                "CloudTrailWritesLogs", ["s3:PutObject"],
                [pulumi.Output.format("{0}/AWSLogs/{1}/*", bucket_arn, context.account_id)],
                principal={"Service": "cloudtrail.amazonaws.com"},
                condition={
                    "StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceArn": trail_arn,
                    }
                },
            )

        self.bucket = SecureBucket(
            f"{name}-logs",
            SecureBucketArgs(
                bucket_prefix=f"iot-cloudtrail-logs-{context.suffix}-",
                kms_key_arn=args.kms_key_arn,
                tags=context.tags,
                retention=args.log_retention,
                extra_policy_statements=[trail_reads_acl, trail_writes_logs],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=name_of_trail,
            s3_bucket_name=self.bucket.bucket.bucket,
            kms_key_id=args.kms_key_arn,
            enable_logging=True,
            enable_log_file_validation=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            # Insights analyse management events, which the default selectors log.
            insight_selectors=[
                {"insight_type": "ApiCallRateInsight"},
                {"insight_type": "ApiErrorRateInsight"},
            ],
            tags=context.tags,
            # CloudTrail checks the bucket policy when the trail is created; the
            # trail only references the bucket's name, so order them explicitly.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket.policy]),
        )
        self.register_outputs({"trailArn": self.trail.arn, "bucketName": self.bucket.bucket.bucket})
