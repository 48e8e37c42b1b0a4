"""From IoT Core into Kinesis: the stream, the topic rule, and where the rule's failures go."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import service_role, statement
from handler.message_format import KINESIS_PARTITION_KEY_TEMPLATE, RULE_SQL, RULE_SQL_VERSION


@dataclass
class IngestionArgs:
    suffix: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    stream_retention_hours: int
    log_retention_days: int
    tags: dict[str, str]


class Ingestion(pulumi.ComponentResource):
    """The on-demand, KMS-encrypted stream and the rule that routes device telemetry into it.

    The rule's SQL and partition key come from handler/message_format.py, which
    the processor and the local bridge use too. Deliveries the rule cannot make
    go to an encrypted log group through the error action, with its own role:
    the ingest role may only put records into the stream.
    """

    stream: aws.kinesis.Stream
    rule: aws.iot.TopicRule
    error_log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Ingestion", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=f"iot-sensor-stream-{args.suffix}",
            stream_mode_details={"stream_mode": "ON_DEMAND"},
            retention_period=args.stream_retention_hours,
            encryption_type="KMS",
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        # Topic rule names allow letters, digits and underscores only.
        self.rule_name = f"iot_sensor_ingest_{args.suffix.replace('-', '_')}"
        error_log_group_name = f"/aws/iot/rules/iot-sensor-ingest-{args.suffix}/errors"
        self.error_log_group = aws.cloudwatch.LogGroup(
            f"{name}-rule-errors",
            name=error_log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        ingest_role, ingest_policy = service_role(
            f"{name}-rule-role",
            role_name=f"iot-rule-role-{args.suffix}",
            service="iot.amazonaws.com",
            account_id=args.account_id,
            description="Lets the telemetry topic rule put records into the sensor stream",
            statements=[
                statement("PutIntoSensorStream", ["kinesis:PutRecord"], [self.stream.arn]),
                # The stream is encrypted with the stack's key: writing needs a data key.
                statement("EncryptStreamRecords", ["kms:GenerateDataKey"], [args.kms_key_arn]),
            ],
            tags=args.tags,
            parent=self,
        )
        group_arn = pulumi.Output.format(
            "arn:{0}:logs:{1}:{2}:log-group:{3}", args.partition, args.region, args.account_id, error_log_group_name
        )
        error_role, error_policy = service_role(
            f"{name}-rule-error-role",
            role_name=f"iot-rule-error-role-{args.suffix}",
            service="iot.amazonaws.com",
            account_id=args.account_id,
            description="Lets the telemetry topic rule's error action write failed deliveries to its log group",
            statements=[
                statement(
                    "WriteRuleErrors",
                    ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    [group_arn, pulumi.Output.concat(group_arn, ":*")],
                ),
            ],
            tags=args.tags,
            parent=self,
        )
        self.rule = aws.iot.TopicRule(
            f"{name}-rule",
            name=self.rule_name,
            description="Routes device telemetry into the sensor stream, partitioned by device",
            enabled=True,
            sql=RULE_SQL,
            sql_version=RULE_SQL_VERSION,
            kineses=[
                {
                    "stream_name": self.stream.name,
                    "role_arn": ingest_role.arn,
                    "partition_key": KINESIS_PARTITION_KEY_TEMPLATE,
                }
            ],
            error_action={
                "cloudwatch_logs": {"log_group_name": self.error_log_group.name, "role_arn": error_role.arn}
            },
            tags=args.tags,
            # IoT checks at creation that the roles can do what the actions need.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ingest_policy, error_policy]),
        )
        self.register_outputs({"streamName": self.stream.name, "ruleName": self.rule.name})
