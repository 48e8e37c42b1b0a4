"""The audit trail: CloudTrail with Insights into its own encrypted bucket, delivered to
CloudWatch Logs too, where the CIS AWS Foundations metric filters and alarms watch it.

A stack creates this only with `auditTrail: create`; with `none` the account relies
on a trail the organization already runs (README, Audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import document, statement
from components.log_groups import encrypted_log_group
from components.alarms import AlarmSpec, Metric, create_alarm
from components.secure_bucket import BucketDeletion, BucketRetention, SecureBucket, SecureBucketArgs


def trail_name(suffix: str) -> str:
    """Explicit, so the trail's ARN is known (to the key and bucket policies) before it exists."""
    return f"iot-audit-trail-{suffix}"


def trail_log_group_name(suffix: str) -> str:
    """The CloudWatch Logs group the trail delivers to (the key policy names it)."""
    return f"/aws/cloudtrail/{trail_name(suffix)}"


def security_metric_namespace(suffix: str) -> str:
    # One namespace per stack: two stacks' trails in one account never add up in one metric.
    return f"IotPipeline/Audit/{suffix}"


@dataclass(frozen=True)
class SecurityEvent:
    """A CIS AWS Foundations monitoring control: a metric filter on the trail's events and its alarm."""

    role: str
    control: str
    description: str
    pattern: str


# The filter patterns as the CIS AWS Foundations Benchmark (v3.0, section 4) gives them.
SECURITY_EVENTS = (
    SecurityEvent(
        "unauthorized-api-calls", "CIS 4.1",
        "API calls were refused as unauthorized or access denied: probing, or a role missing a permission.",
        '{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && '
        '(($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket")) }',
    ),
    SecurityEvent(
        "console-sign-in-without-mfa", "CIS 4.2",
        "An IAM user signed in to the console without multi-factor authentication.",
        '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
        '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
    ),
    SecurityEvent(
        "root-account-use", "CIS 4.3",
        "The account's root user made a request: it should never be needed for daily work.",
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }',
    ),
    SecurityEvent(
        "iam-policy-changes", "CIS 4.4",
        "An IAM policy was created, changed, attached, detached or deleted.",
        "{ ($.eventSource = iam.amazonaws.com) && (($.eventName = DeleteGroupPolicy) || "
        "($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || "
        "($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || "
        "($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || "
        "($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || "
        "($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || "
        "($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || "
        "($.eventName = DetachGroupPolicy)) }",
    ),
    SecurityEvent(
        "cloudtrail-configuration-changes", "CIS 4.5",
        "A trail was created, updated, deleted, started or stopped.",
        "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
        "($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    ),
    SecurityEvent(
        "kms-key-disabled-or-deleted", "CIS 4.7",
        "A customer-managed KMS key was disabled or scheduled for deletion: data under it becomes unreadable.",
        "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || "
        "($.eventName = ScheduleKeyDeletion)) }",
    ),
    SecurityEvent(
        "s3-bucket-policy-changes", "CIS 4.8",
        "A bucket's ACL, policy, CORS, lifecycle or replication configuration was changed or deleted.",
        "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
        "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || "
        "($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || "
        "($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || "
        "($.eventName = DeleteBucketReplication)) }",
    ),
)


@dataclass
class AuditArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    # The stack's alarm topic: the CIS alarms notify the same people as the pipeline's.
    alarm_topic_arn: pulumi.Input[str]
    log_retention: BucketRetention
    log_deletion: BucketDeletion
    # Retention of the CloudWatch Logs copy of the trail's events.
    log_group_retention_days: int
    # NONE, GOVERNANCE or COMPLIANCE: S3 Object Lock on the trail bucket.
    object_lock_mode: str
    object_lock_days: int


class Audit(pulumi.ComponentResource):
    """A multi-region trail with log file validation and API call/error rate Insights, its
    bucket (Object Lock where configured), its CloudWatch Logs delivery and the CIS alarms."""

    trail: aws.cloudtrail.Trail
    bucket: SecureBucket
    log_group: aws.cloudwatch.LogGroup
    delivery_role: aws.iam.Role
    object_lock: aws.s3.BucketObjectLockConfiguration | None
    metric_filters: dict[str, aws.cloudwatch.LogMetricFilter]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Audit", name, None, opts)
        context = args.context
        name_of_trail = trail_name(context.suffix)
        trail_arn = context.arn("cloudtrail", f"trail/{name_of_trail}")
        self.bucket = self._create_bucket(name, args, trail_arn)
        self.object_lock = self._create_object_lock(name, args)
        self.log_group = encrypted_log_group(
            f"{name}-trail-log-group",
            name=trail_log_group_name(context.suffix),
            retention_days=args.log_group_retention_days,
            kms_key_arn=args.kms_key_arn,
            context=context,
            parent=self,
        )
        self.delivery_role, delivery_policy = self._create_delivery_role(name, args, trail_arn)
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
            # CloudTrail takes the group's ARN with the log-stream wildcard appended.
            cloud_watch_logs_group_arn=pulumi.Output.concat(self.log_group.arn, ":*"),
            cloud_watch_logs_role_arn=self.delivery_role.arn,
            tags=context.tags,
            # CloudTrail checks the bucket policy and tries the delivery role when the
            # trail is created; the trail names neither resource, so order them explicitly.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket.policy, delivery_policy]),
        )
        self.metric_filters, self.alarms = self._create_security_alarms(name, args)
        self.register_outputs({
            "trailArn": self.trail.arn,
            "bucketName": self.bucket.bucket.bucket,
            "logGroupName": self.log_group.name,
        })

    def _create_bucket(self, name: str, args: AuditArgs, trail_arn: pulumi.Output[str]) -> SecureBucket:
        context = args.context
        only_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}

        def trail_statements(bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
            reads_acl = statement(
                "CloudTrailChecksAcl", ["s3:GetBucketAcl"], [bucket_arn],
                principal={"Service": "cloudtrail.amazonaws.com"}, condition=only_this_trail,
            )
            writes_logs = statement(
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
            return [reads_acl, writes_logs]

        return SecureBucket(
            f"{name}-logs",
            SecureBucketArgs(
                bucket_prefix=f"iot-cloudtrail-logs-{context.suffix}-",
                kms_key_arn=args.kms_key_arn,
                tags=context.tags,
                retention=args.log_retention,
                deletion=args.log_deletion,
                extra_policy_statements=trail_statements,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_object_lock(self, name: str, args: AuditArgs) -> aws.s3.BucketObjectLockConfiguration | None:
        """Object Lock on the existing, versioned trail bucket: its own resource, because
        `object_lock_enabled` on the bucket would replace the bucket (and its logs).

        Every new log file and version is then retained for `object_lock_days`; in
        COMPLIANCE mode nobody, the account root included, can delete it or shorten that.
        """
        if args.object_lock_mode == "NONE":
            return None
        return aws.s3.BucketObjectLockConfiguration(
            f"{name}-logs-object-lock",
            bucket=self.bucket.bucket.id,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": args.object_lock_mode, "days": args.object_lock_days}},
            # S3 enables Object Lock only on a bucket whose versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket.versioning]),
        )

    def _create_delivery_role(self, name: str, args: AuditArgs, trail_arn: pulumi.Output[str]
                              ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role CloudTrail assumes to write the trail's events into its log group, and nothing else."""
        context = args.context
        role_name = f"iot-cloudtrail-logs-role-{context.suffix}"
        group_arn = context.arn("logs", f"log-group:{trail_log_group_name(context.suffix)}")
        role = aws.iam.Role(
            f"{name}-delivery-role",
            name=role_name,
            description="Lets this stack's trail deliver its events to its CloudWatch Logs group",
            assume_role_policy=document(statement(
                "TrustThisTrail", ["sts:AssumeRole"], principal={"Service": "cloudtrail.amazonaws.com"},
                # Only this trail of this account (confused-deputy protection).
                condition={"StringEquals": {"aws:SourceArn": trail_arn, "aws:SourceAccount": context.account_id}},
            )),
            tags=context.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-delivery-role-policy",
            name=f"{role_name}-policy",
            role=role.id,
            policy=document(statement(
                "DeliverTrailEvents", ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(group_arn, ":log-stream:*")],
            )),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, policy

    def _create_security_alarms(self, name: str, args: AuditArgs
                                ) -> tuple[dict[str, aws.cloudwatch.LogMetricFilter],
                                           dict[str, aws.cloudwatch.MetricAlarm]]:
        context = args.context
        namespace = security_metric_namespace(context.suffix)
        filters, alarms = {}, {}
        for event in SECURITY_EVENTS:
            # The alarm keeps the stack's alarm naming (the topic and key policies admit exactly
            # those); the filter and its metric are named apart from it.
            metric_name = f"iot-audit-{event.role}-{context.suffix}"
            filters[event.role] = aws.cloudwatch.LogMetricFilter(
                f"{name}-{event.role}-filter",
                name=metric_name,
                log_group_name=self.log_group.name,
                pattern=event.pattern,
                metric_transformation={"name": metric_name, "namespace": namespace, "value": "1"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            alarms[event.role] = create_alarm(
                f"{name}-{event.role}-alarm",
                AlarmSpec(
                    role=event.role,
                    description=f"{event.control}: {event.description}",
                    threshold=1,
                    comparison="GreaterThanOrEqualToThreshold",
                    metric=Metric(namespace, metric_name, {}, "Sum"),
                ),
                context=context,
                topic_arn=args.alarm_topic_arn,
                # A security event is an incident of its own; "back to OK" five minutes later is noise.
                notify_ok=False,
                parent=self,
            )
        return filters, alarms
