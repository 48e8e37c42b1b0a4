"""Operations: the alarms that tell someone the pipeline is in trouble, the encrypted topic
they notify, and the pipeline's dashboard.

The alarms are declared in components/alarms.py, the dashboard's widgets in
components/dashboard.py; docs/operations.md says what each alarm means and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.alarms import WatchedResources, alarm_name, alarm_specs, create_alarm
from components.context import StackContext
from components.dashboard import dashboard_body
from components.iam import document, statement


@dataclass
class MonitoringArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    watched: WatchedResources
    # Alarm role -> threshold (the stack's alarm* settings).
    thresholds: Mapping[str, int]
    alarm_emails: Sequence[str]


class Monitoring(pulumi.ComponentResource):
    """Alarms on every stage of the pipeline, notifying one topic encrypted with the stack's
    key, and a dashboard of the same metrics."""

    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Monitoring", name, None, opts)
        self.topic = self._create_topic(name, args)
        self.alarms = {
            spec.role: create_alarm(f"{name}-{spec.role}-alarm", spec, context=args.context,
                                    topic_arn=self.topic.arn, parent=self)
            for spec in alarm_specs(args.watched, args.thresholds)
        }
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"iot-pipeline-{args.context.suffix}",
            dashboard_body=dashboard_body(args.watched, args.context.region,
                                          [alarm.arn for alarm in self.alarms.values()]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"alarmTopicArn": self.topic.arn, "dashboardName": self.dashboard.dashboard_name}
        )

    def _create_topic(self, name: str, args: MonitoringArgs) -> aws.sns.Topic:
        context = args.context
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-alarm-topic",
            name=f"iot-pipeline-alarms-{context.suffix}",
            display_name=f"IoT pipeline alarms ({context.suffix})",
            # The key policy lets cloudwatch.amazonaws.com use the key for this
            # account's alarms; without it, notifications would be dropped silently.
            kms_master_key_id=args.kms_key_arn,
            tags=context.tags,
            opts=child,
        )
        this_stacks_alarms = context.arn("cloudwatch", f"alarm:{alarm_name('*', context.suffix)}")
        aws.sns.TopicPolicy(
            f"{name}-alarm-topic-policy",
            arn=topic.arn,
            policy=document(
                statement(
                    "CloudWatchAlarmsPublish",
                    ["sns:Publish"],
                    [topic.arn],
                    principal={"Service": "cloudwatch.amazonaws.com"},
                    # Only this stack's alarms, in this account (confused-deputy protection).
                    condition={
                        "StringEquals": {"aws:SourceAccount": context.account_id},
                        "ArnLike": {"aws:SourceArn": this_stacks_alarms},
                    },
                )
            ),
            opts=child,
        )
        for address in args.alarm_emails:
            # Named by address, so removing one address leaves the others in place.
            # AWS sends a confirmation mail; until it is confirmed nothing is delivered.
            aws.sns.TopicSubscription(
                f"{name}-alarm-email-{address}",
                topic=topic.arn,
                protocol="email",
                endpoint=address,
                opts=child,
            )
        return topic
