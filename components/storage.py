"""Where processed metrics and raw readings are kept: the metrics table and the archive bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.secure_bucket import SecureBucket, SecureBucketArgs
from handler.layout import TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE


@dataclass
class StorageArgs:
    suffix: str
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    archive_transition_days: int = 90
    archive_noncurrent_transition_days: int = 30
    archive_expiration_days: int = 0
    force_destroy: bool = False
    deletion_protection: bool = True


class Storage(pulumi.ComponentResource):
    """The DynamoDB metrics table and the S3 archive of raw readings.

    The table's key schema is in handler/layout.py: one partition per device,
    time-first sort keys, so a device's metrics and anomalies over a time range
    are one Query. Changing it replaces the table.
    """

    table: aws.dynamodb.Table
    archive: SecureBucket

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Storage", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-metrics-table",
            name=f"sensor-metrics-{args.suffix}",
            billing_mode="PAY_PER_REQUEST",
            hash_key=TABLE_PARTITION_KEY,
            range_key=TABLE_SORT_KEY,
            # Only key attributes are declared; item attributes are schemaless.
            attributes=[
                {"name": TABLE_PARTITION_KEY, "type": "S"},
                {"name": TABLE_SORT_KEY, "type": "S"},
            ],
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True, "kms_key_arn": args.kms_key_arn},
            ttl={"attribute_name": TABLE_TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=args.deletion_protection,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        self.archive = SecureBucket(
            f"{name}-archive",
            SecureBucketArgs(
                bucket_prefix=f"iot-sensor-data-{args.suffix}-",
                kms_key_arn=args.kms_key_arn,
                tags=args.tags,
                transition_days=args.archive_transition_days,
                noncurrent_transition_days=args.archive_noncurrent_transition_days,
                expiration_days=args.archive_expiration_days,
                force_destroy=args.force_destroy,
                protect=args.deletion_protection,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"tableName": self.table.name, "archiveBucketName": self.archive.bucket.bucket}
        )
