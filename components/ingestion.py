"""From IoT Core into Kinesis: the stream, the topic rule, and where the rule's failures go."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import iot_log_writer_role, service_role, statement
from components.log_groups import encrypted_log_group
from handler.message_format import KINESIS_PARTITION_KEY_TEMPLATE, RULE_SQL_VERSION, rule_sql


def rule_name(suffix: str) -> str:
    # Topic rule names allow letters, digits and underscores only.
    return f"iot_sensor_ingest_{suffix.replace('-', '_')}"


def rule_error_log_group_name(suffix: str) -> str:
    return f"/aws/iot/rules/iot-sensor-ingest-{suffix}/errors"


@dataclass
class IngestionArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    stream_retention_hours: int
    log_retention_days: int


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
        context = args.context
        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=f"iot-sensor-stream-{context.suffix}",
            stream_mode_details={"stream_mode": "ON_DEMAND"},
            retention_period=args.stream_retention_hours,
            encryption_type="KMS",
            kms_key_id=args.kms_key_arn,
            tags=context.tags,
            opts=child,
        )
        self.rule_name = rule_name(context.suffix)
        error_log_group_name = rule_error_log_group_name(context.suffix)
        # Both roles serve this one rule: their trust names it (confused-deputy protection).
        rule_arn = context.arn("iot", f"rule/{self.rule_name}")
        self.error_log_group = encrypted_log_group(
            f"{name}-rule-errors",
            name=error_log_group_name,
            retention_days=args.log_retention_days,
            kms_key_arn=args.kms_key_arn,
            context=context,
            parent=self,
        )
        ingest_role, ingest_policy = service_role(
            f"{name}-rule-role",
            role_name=f"iot-rule-role-{context.suffix}",
            service="iot.amazonaws.com",
            context=context,
            source_arn=rule_arn,
            description="Lets the telemetry topic rule put records into the sensor stream",
            statements=[
                statement("PutIntoSensorStream", ["kinesis:PutRecord"], [self.stream.arn]),
                # The stream is encrypted with the stack's key: writing needs a data key,
                # only through Kinesis in this region, for this stream.
                statement(
                    "EncryptStreamRecords", ["kms:GenerateDataKey"], [args.kms_key_arn],
                    condition={"StringEquals": {
                        "kms:ViaService": pulumi.Output.format("kinesis.{0}.amazonaws.com", context.region),
                        "kms:EncryptionContext:aws:kinesis:arn": self.stream.arn,
                    }},
                ),
            ],
            parent=self,
        )
        error_role, error_policy = iot_log_writer_role(
            f"{name}-rule-error-role",
            role_name=f"iot-rule-error-role-{context.suffix}",
            log_group_name=error_log_group_name,
            sid="WriteRuleErrors",
            context=context,
            source_arn=rule_arn,
            description="Lets the telemetry topic rule's error action write failed deliveries to its log group",
            parent=self,
        )
        self.rule = aws.iot.TopicRule(
            f"{name}-rule",
            name=self.rule_name,
            description="Routes device telemetry into the sensor stream, partitioned by device",
            enabled=True,
            sql=rule_sql(context.suffix),
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
            tags=context.tags,
            # IoT checks at creation that the roles can do what the actions need.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ingest_policy, error_policy]),
        )
        self.register_outputs({"streamName": self.stream.name, "ruleName": self.rule.name})
