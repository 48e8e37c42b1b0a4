"""The whole sensor pipeline, wired from its parts."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components.access_logs import AccessLogs, AccessLogsArgs
from components.alarms import WatchedResources, alarm_name
from components.analytics import Analytics, AnalyticsArgs
from components.audit import Audit, AuditArgs, trail_log_group_name, trail_name
from components.context import FormerParent, StackContext
from components.encryption import Encryption, EncryptionArgs
from components.fleet import Fleet, FleetArgs
from components.ingestion import Ingestion, IngestionArgs, rule_error_log_group_name
from components.iot_logging import IOT_LOG_GROUP_NAME, IotLogging, IotLoggingArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.processing import Processing, ProcessingArgs, function_log_group_name
from components.secure_bucket import BucketDeletion, BucketRetention
from components.settings import PipelineSettings
from components.storage import Storage, StorageArgs


def stack_log_group_names(settings: PipelineSettings) -> list[str]:
    """Every log group the stack creates: the key policy lets CloudWatch Logs use the key for
    these and no other group of the account. A component that adds a log group adds it here."""
    names = [function_log_group_name(settings.suffix), rule_error_log_group_name(settings.suffix)]
    if settings.enable_iot_logging:
        names.append(IOT_LOG_GROUP_NAME)
    if settings.creates_audit_trail:
        names.append(trail_log_group_name(settings.suffix))
    return names


class SensorPipeline(pulumi.ComponentResource):
    """Devices -> IoT Core -> Kinesis -> Lambda -> DynamoDB + S3, audited and encrypted
    with one customer-managed key."""

    def __init__(self, name: str, settings: PipelineSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:SensorPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        context = StackContext(
            suffix=settings.suffix,
            account_id=aws.get_caller_identity_output(opts=invoke).account_id,
            partition=aws.get_partition_output(opts=invoke).partition,
            region=aws.get_region_output(opts=invoke).region,
            tags=settings.tags,
        )

        self.encryption = Encryption(
            f"{name}-encryption",
            EncryptionArgs(
                context=context, trail_name=trail_name(settings.suffix),
                log_group_names=stack_log_group_names(settings), alarm_name_pattern=alarm_name("*", settings.suffix),
                deletion_window_days=settings.kms_deletion_window_days, protect=settings.deletion_protection,
            ),
            opts=child,
        )
        key_arn = self.encryption.key.arn
        archive_retention = BucketRetention(
            transition_days=settings.archive_transition_days,
            noncurrent_transition_days=settings.archive_noncurrent_transition_days,
            expiration_days=settings.archive_expiration_days,
        )
        archive_deletion = BucketDeletion(protect=settings.deletion_protection, force_destroy=settings.force_destroy)
        self.storage = Storage(
            f"{name}-storage",
            StorageArgs(
                context=context, kms_key_arn=key_arn, archive_retention=archive_retention,
                archive_deletion=archive_deletion, table_deletion_protection=settings.deletion_protection,
            ),
            opts=child,
        )
        self.analytics = Analytics(
            f"{name}-analytics",
            AnalyticsArgs(
                context=context, kms_key_arn=key_arn, archive_bucket_name=self.storage.archive.bucket.bucket,
                archive_bucket_arn=self.storage.archive.bucket.arn,
                bytes_scanned_cutoff_mb=settings.athena_bytes_scanned_cutoff_mb,
                maximum_record_age_seconds=settings.maximum_record_age_seconds,
                late_arrival_hours=settings.athena_late_arrival_hours, force_destroy=settings.force_destroy,
            ),
            opts=child,
        )
        self.ingestion = Ingestion(
            f"{name}-ingestion",
            IngestionArgs(
                context=context, kms_key_arn=key_arn, stream_retention_hours=settings.stream_retention_hours,
                log_retention_days=settings.log_retention_days,
            ),
            opts=child,
        )
        self.fleet = Fleet(f"{name}-fleet", FleetArgs(context=context, devices=settings.devices), opts=child)
        archive_bucket = self.storage.archive.bucket
        self.processing = Processing(
            f"{name}-processing",
            ProcessingArgs(
                context=context, kms_key_arn=key_arn,
                stream_arn=self.ingestion.stream.arn, table_name=self.storage.table.name,
                table_arn=self.storage.table.arn, archive_bucket_name=archive_bucket.bucket,
                archive_bucket_arn=archive_bucket.arn,
                log_retention_days=settings.log_retention_days, memory_mb=settings.lambda_memory_mb,
                timeout_seconds=settings.lambda_timeout_seconds, batch_size=settings.batch_size,
                batching_window_seconds=settings.batching_window_seconds,
                maximum_retry_attempts=settings.maximum_retry_attempts,
                maximum_record_age_seconds=settings.maximum_record_age_seconds,
                parallelization_factor=settings.parallelization_factor,
                tracing_mode=settings.tracing_mode, reserved_concurrency=settings.reserved_concurrency,
                metrics_ttl_days=settings.metrics_ttl_days,
                sensor_limits_json=settings.sensor_limits_json(),
                anomaly_settings=settings.anomaly_settings,
            ),
            opts=child,
        )
        monitoring_name = f"{name}-monitoring"
        self.monitoring = Monitoring(
            monitoring_name,
            MonitoringArgs(
                context=context, kms_key_arn=key_arn,
                watched=WatchedResources(
                    function_name=self.processing.function.name, mapping_uuid=self.processing.mapping.uuid,
                    stream_name=self.ingestion.stream.name, rule_name=self.ingestion.rule.name,
                    table_name=self.storage.table.name,
                ),
                thresholds=settings.alarm_thresholds, alarm_emails=settings.alarm_emails,
            ),
            opts=child,
        )
        # IoT Core logging is one setting per account and region: a stack must ask to own it.
        self.iot_logging = IotLogging(
            f"{name}-iot-logging",
            IotLoggingArgs(context=context, kms_key_arn=key_arn, log_retention_days=settings.log_retention_days,
                           log_level=settings.iot_log_level),
            opts=child,
            formerly_under=FormerParent(self.monitoring, monitoring_name),
        ) if settings.enable_iot_logging else None
        audit_retention = dataclasses.replace(archive_retention, expiration_days=settings.audit_expiration_days)
        # The audit log is never force-destroyed with a stack that protects its data.
        audit_deletion = dataclasses.replace(
            archive_deletion, force_destroy=settings.force_destroy and not settings.deletion_protection)
        # With `auditTrail: none` the organization's trail covers the account.
        self.audit = Audit(
            f"{name}-audit",
            AuditArgs(
                context=context, kms_key_arn=key_arn, alarm_topic_arn=self.monitoring.topic.arn,
                log_retention=audit_retention, log_deletion=audit_deletion,
                log_group_retention_days=settings.log_retention_days,
                object_lock_mode=settings.audit_object_lock_mode, object_lock_days=settings.audit_object_lock_days,
            ),
            opts=child,
        ) if settings.creates_audit_trail else None
        logged_buckets = {"archive": self.storage.archive.bucket}
        if self.audit is not None:
            logged_buckets["audit"] = self.audit.bucket.bucket
        self.access_logs = AccessLogs(
            f"{name}-access-logs",
            AccessLogsArgs(context=context, sources=logged_buckets, retention=audit_retention,
                           deletion=audit_deletion),
            opts=child,
        )
        self.iot_endpoint = aws.iot.get_endpoint_output(endpoint_type="iot:Data-ATS", opts=invoke).endpoint_address
        self.register_outputs(
            {
                "streamName": self.ingestion.stream.name,
                "tableName": self.storage.table.name,
                "functionName": self.processing.function.name,
            }
        )
