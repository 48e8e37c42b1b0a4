"""IoT Core's own logging: ONE setting per account and region, which a stack owns only when it
asks to (`enableIotLogging`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.context import FormerParent, StackContext
from components.iam import iot_log_writer_role
from components.log_groups import encrypted_log_group

# IoT Core writes its logs to this one group per account and region; the name is fixed by AWS.
IOT_LOG_GROUP_NAME = "AWSIotLogsV2"


@dataclass
class IotLoggingArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    # DEBUG, INFO, WARN, ERROR or DISABLED.
    log_level: str


class IotLogging(pulumi.ComponentResource):
    """The account's IoT Core logging options, their log group and the role IoT writes with.

    `LoggingOptions` overwrites whatever the account had, and IoT only logs to the
    fixed group `AWSIotLogsV2`, which cannot carry the stack's suffix: two stacks in
    one account and region cannot both declare this component.
    """

    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    options: aws.iot.LoggingOptions

    def __init__(self, name: str, args: IotLoggingArgs, opts: pulumi.ResourceOptions | None = None, *,
                 formerly_under: Optional[FormerParent] = None) -> None:
        """`formerly_under`: these resources were declared under the Monitoring component
        before this one existed; their aliases keep a stack deployed then from replacing them."""
        super().__init__("iotpipeline:index:IotLogging", name, None, opts)

        def formerly(role: str) -> list[pulumi.Alias]:
            """The aliases of the child that was `<Monitoring's name>-<role>`."""
            return [formerly_under.alias(role)] if formerly_under else []

        context = args.context
        self.log_group = encrypted_log_group(
            f"{name}-log-group",
            name=IOT_LOG_GROUP_NAME,
            retention_days=args.log_retention_days,
            kms_key_arn=args.kms_key_arn,
            context=context,
            parent=self,
            aliases=formerly("iot-log-group"),
        )
        self.role, role_policy = iot_log_writer_role(
            f"{name}-role",
            role_name=f"iot-logging-role-{context.suffix}",
            log_group_name=IOT_LOG_GROUP_NAME,
            sid="WriteIotLogs",
            context=context,
            description="Lets IoT Core write its logs to the AWSIotLogsV2 log group",
            parent=self,
            aliases=formerly("iot-logging-role"),
        )
        self.options = aws.iot.LoggingOptions(
            f"{name}-options",
            default_log_level=args.log_level,
            role_arn=self.role.arn,
            disable_all_logs=False,
            # IoT checks the role when the option is set, and would otherwise
            # create the group itself, unencrypted and never expiring.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, self.log_group],
                                        aliases=formerly("iot-logging")),
        )
        self.register_outputs({"logGroupName": self.log_group.name, "roleArn": self.role.arn})
