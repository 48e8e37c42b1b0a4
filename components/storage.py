"""Where processed metrics and raw readings are kept: the metrics table and the archive bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.secure_bucket import BucketDeletion, BucketRetention, SecureBucket, SecureBucketArgs
from handler.layout import TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE


@dataclass
class StorageArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    archive_retention: BucketRetention
    archive_deletion: BucketDeletion
    # DynamoDB's own deletion protection, and Pulumi's protect on the table.
    table_deletion_protection: bool


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
            name=f"sensor-metrics-{args.context.suffix}",
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
            deletion_protection_enabled=args.table_deletion_protection,
            tags=args.context.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.table_deletion_protection),
        )
        self.archive = SecureBucket(
            f"{name}-archive",
            SecureBucketArgs(
                bucket_prefix=f"iot-sensor-data-{args.context.suffix}-",
                kms_key_arn=args.kms_key_arn,
                tags=args.context.tags,
                retention=args.archive_retention,
                deletion=args.archive_deletion,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"tableName": self.table.name, "archiveBucketName": self.archive.bucket.bucket}
        )
