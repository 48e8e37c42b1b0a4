"""The stack's one customer-managed KMS key, and the key policy that lets AWS services use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import document, statement

# What CloudWatch Logs calls on a key that encrypts a log group.
LOGS_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)


@dataclass
class EncryptionArgs:
    context: StackContext
    trail_name: str
    # Every log group of the stack (components/pipeline.py: stack_log_group_names):
    # CloudWatch Logs may use the key for these groups only.
    log_group_names: Sequence[str]
    # The stack's alarm names with `*` for the alarm's role (components/alarms.py:
    # alarm_name): CloudWatch may use the key for these alarms' notifications only.
    alarm_name_pattern: str
    deletion_window_days: int
    protect: bool


class Encryption(pulumi.ComponentResource):
    """One symmetric key with rotation, and its alias.

    The key policy only holds what AWS services need: the account's own roles
    get their KMS use through their IAM policies (the root statement makes IAM
    policies count), so the key policy never names a role that does not exist
    yet. The trail's and alarms' ARNs are built from names for the same reason.
    """

    key: aws.kms.Key
    alias: aws.kms.Alias

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Encryption", name, None, opts)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the IoT sensor pipeline's data at rest ({args.context.suffix})",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=self._key_policy(args),
            tags=args.context.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/iot-manufacturing-{args.context.suffix}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"keyArn": self.key.arn, "aliasName": self.alias.name})

    @staticmethod
    def _key_policy(args: EncryptionArgs) -> pulumi.Output[str]:
        context = args.context
        account_root = context.arn("iam", "root", region="")
        trail_arn = context.arn("cloudtrail", f"trail/{args.trail_name}")
        return document(
            # Without this AWS refuses the policy (lock-out check), and IAM
            # policies could not grant the pipeline's roles any use of the key.
            statement("AccountAdministration", ["kms:*"], "*", principal={"AWS": account_root}),
            statement(
                "CloudTrailEncryptsLogs",
                ["kms:GenerateDataKey"],
                "*",
                principal={"Service": "cloudtrail.amazonaws.com"},
                condition={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": context.arn("cloudtrail", "trail/*", region="*")
                    },
                    "StringEquals": {"aws:SourceArn": trail_arn},
                },
            ),
            # Unconditioned, as AWS documents it: DescribeKey reveals no data,
            # and CloudTrail checks it when the trail is created.
            statement("CloudTrailDescribesKey", ["kms:DescribeKey"], "*",
                      principal={"Service": "cloudtrail.amazonaws.com"}),
            statement(
                "AccountReadsTrailLogs",
                ["kms:Decrypt"],
                "*",
                principal={"AWS": account_root},
                condition={"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}},
            ),
            statement(
                "CloudWatchLogsEncryptsLogGroups",
                list(LOGS_KEY_ACTIONS),
                "*",
                principal={"Service": pulumi.Output.format("logs.{0}.amazonaws.com", context.region)},
                # This stack's groups only, not every group of the account: the
                # encryption context names the group the key is used for.
                condition={
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            context.arn("logs", f"log-group:{group}") for group in args.log_group_names
                        ]
                    }
                },
            ),
            # This stack's alarms publish to its encrypted SNS topic; without this
            # their notifications are dropped silently.
            statement(
                "CloudWatchAlarmsPublishEncrypted",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                "*",
                principal={"Service": "cloudwatch.amazonaws.com"},
                condition={
                    "StringEquals": {"aws:SourceAccount": context.account_id},
                    "ArnLike": {"aws:SourceArn": context.arn("cloudwatch", f"alarm:{args.alarm_name_pattern}")},
                },
            ),
        )
