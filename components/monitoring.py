"""Operations: the alarms that tell someone the pipeline is in trouble, the encrypted topic
they notify, the pipeline's dashboard and, per stack, IoT Core's account-wide logging.

What each alarm means and what to do about it is in docs/operations.md; the metric
and dimension names are the ones AWS documents for each service (sources there too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import document, service_role, statement
from components.log_groups import encrypted_log_group
from components.processing import METRICS_NAMESPACE
from components.settings import AlarmSettings
from handler import layout

# Every alarm and the dashboard look at five-minute windows, the unit the
# thresholds in the stack's config are stated in ("this many in 5 minutes").
PERIOD_SECONDS = 300

# IoT Core writes its logs to this one group per account and region; the name is fixed by AWS.
IOT_LOG_GROUP_NAME = "AWSIotLogsV2"

# The mapping publishes these (AWS/Lambda, dimension EventSourceMappingUUID) only
# with `metrics_config={"metrics": ["EventCount"]}`, which components/processing.py sets.
MAPPING_POLLED = "PolledEventCount"
MAPPING_SENT_TO_FAILURE_DESTINATION = "OnFailureDestinationDeliveredEventCount"
MAPPING_DROPPED = "DroppedEventCount"

# Records that are dropped, or that no failure path can keep, are lost for good:
# one is already too many, so these alarms take no threshold from config.
ANY_LOSS = 1


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric as AWS publishes it: the dimensions must match exactly."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: on a single `metric`, or on `queries` (metric math or Metrics Insights)."""

    role: str
    description: str
    threshold: float
    comparison: str
    metric: Optional[Metric] = None
    queries: Sequence[dict[str, Any]] = ()
    # Most of these metrics are only published while records flow: a quiet
    # factory floor is not an incident.
    treat_missing_data: str = "notBreaching"
    evaluation_periods: int = 1


@dataclass
class MonitoringArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    function_name: pulumi.Input[str]
    mapping_uuid: pulumi.Input[str]
    stream_name: pulumi.Input[str]
    rule_name: pulumi.Input[str]
    table_name: pulumi.Input[str]
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    log_retention_days: int = 30
    # IoT Core logging is one setting per account and region: a stack must ask to own it.
    enable_iot_logging: bool = False
    iot_log_level: str = "WARN"


def alarm_name(role: str, suffix: str) -> str:
    # `_` before the suffix, which never holds one: `alarm_name("*", suffix)` then matches this
    # stack's alarms only (with `-`, the pattern for `dev` would also match a stack `team-dev`).
    return f"iot-pipeline-{role}_{suffix}"


class Monitoring(pulumi.ComponentResource):
    """Alarms on every stage of the pipeline, notifying one topic encrypted with the stack's
    key; a dashboard of the same metrics; and IoT Core logging when the stack owns it."""

    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard
    iot_logging: Optional[aws.iot.LoggingOptions]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Monitoring", name, None, opts)
        self.topic = self._create_topic(name, args)
        self.alarms = {
            spec.role: create_alarm(f"{name}-{spec.role}-alarm", spec, context=args.context,
                                    topic_arn=self.topic.arn, parent=self)
            for spec in alarm_specs(args)
        }
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"iot-pipeline-{args.context.suffix}",
            dashboard_body=dashboard_body(args, [alarm.arn for alarm in self.alarms.values()]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.iot_logging = self._create_iot_logging(name, args) if args.enable_iot_logging else None
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
        for address in args.alarms.emails:
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

    def _create_iot_logging(self, name: str, args: MonitoringArgs) -> aws.iot.LoggingOptions:
        """IoT Core logging: ONE setting per account and region, which this stack then owns.

        `LoggingOptions` overwrites whatever the account had, and IoT only logs to
        the fixed group `AWSIotLogsV2`, which cannot carry the stack's suffix: two
        stacks in one account and region cannot both turn this on.
        """
        context = args.context
        log_group = encrypted_log_group(
            f"{name}-iot-log-group",
            name=IOT_LOG_GROUP_NAME,
            retention_days=args.log_retention_days,
            kms_key_arn=args.kms_key_arn,
            context=context,
            parent=self,
        )
        group_arn = context.arn("logs", f"log-group:{IOT_LOG_GROUP_NAME}")
        role, role_policy = service_role(
            f"{name}-iot-logging-role",
            role_name=f"iot-logging-role-{context.suffix}",
            service="iot.amazonaws.com",
            context=context,
            description="Lets IoT Core write its logs to the AWSIotLogsV2 log group",
            statements=[
                # The group exists already (created here, encrypted and expiring),
                # so IoT needs no CreateLogGroup or PutRetentionPolicy.
                statement(
                    "WriteIotLogs",
                    ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    [group_arn, pulumi.Output.concat(group_arn, ":*")],
                ),
            ],
            parent=self,
        )
        return aws.iot.LoggingOptions(
            f"{name}-iot-logging",
            default_log_level=args.iot_log_level,
            role_arn=role.arn,
            disable_all_logs=False,
            # IoT checks the role when the option is set, and would otherwise
            # create the group itself, unencrypted and never expiring.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, log_group]),
        )


def create_alarm(resource_name: str, spec: AlarmSpec, *, context: StackContext, topic_arn: pulumi.Input[str],
                 parent: pulumi.Resource, notify_ok: bool = True) -> aws.cloudwatch.MetricAlarm:
    """One alarm of the stack, named `alarm_name(spec.role, suffix)` (the alarm topic's
    policy and the key policy let exactly those names publish), notifying `topic_arn`."""
    metric_inputs: dict[str, Any] = (
        {
            "namespace": spec.metric.namespace,
            "metric_name": spec.metric.name,
            "statistic": spec.metric.statistic,
            "period": PERIOD_SECONDS,
            **({"dimensions": dict(spec.metric.dimensions)} if spec.metric.dimensions else {}),
        }
        if spec.metric is not None
        else {"metric_queries": list(spec.queries)}
    )
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name(spec.role, context.suffix),
        alarm_description=spec.description,
        comparison_operator=spec.comparison,
        threshold=spec.threshold,
        evaluation_periods=spec.evaluation_periods,
        treat_missing_data=spec.treat_missing_data,
        # OK notifications close the incident the alarm opened. No
        # insufficient-data actions: with no records flowing most metrics
        # have no data, and silence is judged by the mapping-not-polling alarm.
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn] if notify_ok else None,
        tags=context.tags,
        opts=pulumi.ResourceOptions(parent=parent),
        **metric_inputs,
    )


def _lambda(metric_name: str, statistic: str, dimension: str, value: pulumi.Input[str]) -> Metric:
    return Metric("AWS/Lambda", metric_name, {dimension: value}, statistic)


def _processor_metric(metric_name: str, function_name: pulumi.Input[str]) -> Metric:
    """A metric the processor emits in embedded metric format (handler/metrics.py)."""
    return Metric(METRICS_NAMESPACE, metric_name, {layout.METRIC_DIMENSION_FUNCTION: function_name}, "Sum")


def _rule_action_query(metric_name: str, rule_name: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The rule's action metric summed over its action types.

    IoT publishes `Success`, `Failure`, `ErrorActionSuccess` and `ErrorActionFailure`
    with the dimensions RuleName and ActionType; a Metrics Insights query on the
    rule name counts every action of this rule without guessing ActionType values.
    """
    return [{
        "id": "rule_" + metric_name.lower(),
        "expression": pulumi.Output.concat(
            f'SELECT SUM({metric_name}) FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE RuleName = \'',
            rule_name, "'",
        ),
        "period": PERIOD_SECONDS,
        "label": f"{metric_name} of the topic rule's actions",
        "return_data": True,
    }]


def _table_throttle_queries(table_name: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Read and write throttle events on the table, summed.

    These count every throttled item inside BatchGetItem/TransactWriteItems, which
    the processor uses; ThrottledRequests counts a request only if all of it was
    throttled, and is published per Operation.
    """
    def events(query_id: str, metric_name: str) -> dict[str, Any]:
        return {
            "id": query_id,
            "metric": {
                "namespace": "AWS/DynamoDB",
                "metric_name": metric_name,
                "dimensions": {"TableName": table_name},
                "stat": "Sum",
                "period": PERIOD_SECONDS,
            },
            "return_data": False,
        }

    return [
        events("reads", "ReadThrottleEvents"),
        events("writes", "WriteThrottleEvents"),
        # FILL: a table with only write throttles still has no read data points.
        {"id": "throttle_events", "expression": "FILL(reads, 0) + FILL(writes, 0)",
         "label": "Throttled reads and writes", "return_data": True},
    ]


def alarm_specs(args: MonitoringArgs) -> list[AlarmSpec]:
    """Every alarm of the pipeline, from ingest to storage."""
    limits = args.alarms
    at_least, more_than = "GreaterThanOrEqualToThreshold", "GreaterThanThreshold"
    function, mapping = args.function_name, args.mapping_uuid
    return [
        AlarmSpec(
            "iterator-age",
            "The processor is falling behind the stream: records reach it longer than the threshold after "
            "they entered the stream, and the stream deletes them at its retention.",
            limits.iterator_age_ms, more_than, _lambda("IteratorAge", "Maximum", "FunctionName", function),
        ),
        AlarmSpec(
            "processor-errors", "The processor failed whole invocations (exception, timeout, out of memory).",
            limits.lambda_errors, at_least, _lambda("Errors", "Sum", "FunctionName", function),
        ),
        AlarmSpec(
            "processor-throttles", "Invocations of the processor were throttled (concurrency limit).",
            limits.lambda_throttles, at_least, _lambda("Throttles", "Sum", "FunctionName", function),
        ),
        AlarmSpec(
            "mapping-not-polling",
            "The stream mapping has not polled the stream for 15 minutes (disabled, or lost its permissions "
            "on the stream or key); records pile up without any error.",
            1, "LessThanThreshold", _lambda(MAPPING_POLLED, "SampleCount", "EventSourceMappingUUID", mapping),
            # The mapping reports every poll, even an empty one: silence is the fault here.
            treat_missing_data="breaching", evaluation_periods=3,
        ),
        AlarmSpec(
            "records-to-failure-destination",
            "Records gave up after their retries or maximum age and were written to the archive bucket "
            "(aws/lambda/ prefix) instead of being processed.",
            limits.failed_batches, at_least,
            _lambda(MAPPING_SENT_TO_FAILURE_DESTINATION, "Sum", "EventSourceMappingUUID", mapping),
        ),
        AlarmSpec(
            "records-dropped",
            "Records were dropped by the stream mapping without reaching the on-failure destination: "
            "they are lost unless the stream still holds them.",
            ANY_LOSS, at_least, _lambda(MAPPING_DROPPED, "Sum", "EventSourceMappingUUID", mapping),
        ),
        AlarmSpec(
            "failure-destination-delivery",
            "Lambda could not write a failed batch to the on-failure destination (bucket permissions, key "
            "policy, size): those records are dropped.",
            ANY_LOSS, at_least, _lambda("DestinationDeliveryFailures", "Sum", "FunctionName", function),
        ),
        AlarmSpec(
            "rule-action-failures",
            "The topic rule could not put device messages into the stream; they went to the rule's error "
            "log group instead.",
            limits.rule_failures, at_least, queries=_rule_action_query("Failure", args.rule_name),
        ),
        AlarmSpec(
            "rule-error-action-failures",
            "The topic rule could not deliver a message to the stream nor to its error log group: "
            "that message is lost.",
            ANY_LOSS, at_least, queries=_rule_action_query("ErrorActionFailure", args.rule_name),
        ),
        AlarmSpec(
            "metrics-table-throttles", "DynamoDB throttled reads or writes on the metrics table.",
            limits.dynamodb_throttles, at_least, queries=_table_throttle_queries(args.table_name),
        ),
        AlarmSpec(
            "records-quarantined",
            "More records than the threshold failed validation in five minutes and were quarantined.",
            limits.quarantined_per_5min, more_than, _processor_metric(layout.METRIC_QUARANTINED, function),
        ),
        AlarmSpec(
            "anomalies",
            "More anomaly episodes than the threshold were opened in five minutes, across all devices and kinds.",
            limits.anomalies_per_5min, more_than, _processor_metric(layout.METRIC_ANOMALIES, function),
        ),
    ]


def dashboard_body(args: MonitoringArgs, alarm_arns: Sequence[pulumi.Input[str]]) -> pulumi.Output[str]:
    """The pipeline on one page, in the order data flows through it."""
    function, stream, table, mapping = args.function_name, args.stream_name, args.table_name, args.mapping_uuid
    region = args.context.region

    def line(namespace: str, metric_name: str, dimensions: Mapping[str, pulumi.Input[str]], stat: str,
             label: str) -> list[Any]:
        flat = [part for pair in dimensions.items() for part in pair]
        return [namespace, metric_name, *flat, {"stat": stat, "label": label}]

    def processor(metric_name: str, label: str, stat: str = "Sum", **extra: pulumi.Input[str]) -> list[Any]:
        return line(METRICS_NAMESPACE, metric_name, {layout.METRIC_DIMENSION_FUNCTION: function, **extra},
                    stat, label)

    def rule_actions(metric_name: str, label: str) -> list[Any]:
        # SEARCH: one line per action type, whatever IoT names them.
        search = pulumi.Output.concat(
            "SEARCH('{AWS/IoT,ActionType,RuleName} MetricName=\"", metric_name, "\" RuleName=\"",
            args.rule_name, "\"', 'Sum', ", str(PERIOD_SECONDS), ")",
        )
        return [{"expression": search, "label": label, "id": metric_name.lower()}]

    graphs: list[tuple[str, list[list[Any]]]] = [
        ("Ingest rate (per 5 minutes)", [
            line("AWS/IoT", "TopicMatch", {"RuleName": args.rule_name}, "Sum", "Messages matching the rule"),
            rule_actions("Success", "Delivered by the rule"),
            line("AWS/Kinesis", "IncomingRecords", {"StreamName": stream}, "Sum", "Records into the stream"),
            processor(layout.METRIC_READINGS_STORED, "Readings stored"),
        ]),
        ("Iterator age (ms)", [
            line("AWS/Lambda", "IteratorAge", {"FunctionName": function}, "Maximum", "Processor iterator age"),
            line("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": stream}, "Maximum",
                 "Stream iterator age"),
        ]),
        ("Batch latency (ms)", [
            processor(layout.METRIC_BATCH_LATENCY, "Batch latency p50", stat="p50"),
            processor(layout.METRIC_BATCH_LATENCY, "Batch latency p99", stat="p99"),
            line("AWS/Lambda", "Duration", {"FunctionName": function}, "p99", "Invocation duration p99"),
        ]),
        ("Errors and throttles", [
            line("AWS/Lambda", "Errors", {"FunctionName": function}, "Sum", "Processor errors"),
            line("AWS/Lambda", "Throttles", {"FunctionName": function}, "Sum", "Processor throttles"),
            processor(layout.METRIC_BATCHES_FAILED, "Batches with failed records (retried)"),
            rule_actions("Failure", "Rule action failures"),
            line("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": table}, "Sum", "Table write throttles"),
            line("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": table}, "Sum", "Table read throttles"),
        ]),
        ("Failed records", [
            line("AWS/Lambda", MAPPING_SENT_TO_FAILURE_DESTINATION, {"EventSourceMappingUUID": mapping}, "Sum",
                 "Sent to the on-failure destination"),
            line("AWS/Lambda", MAPPING_DROPPED, {"EventSourceMappingUUID": mapping}, "Sum", "Dropped"),
            line("AWS/Lambda", "DestinationDeliveryFailures", {"FunctionName": function}, "Sum",
                 "Failed deliveries to the destination"),
        ]),
        ("Anomalies by kind", [
            processor(layout.METRIC_ANOMALIES, kind, **{layout.METRIC_DIMENSION_ANOMALY_KIND: kind})
            for kind in layout.ANOMALY_KINDS
        ]),
        ("Quarantined records", [
            processor(layout.METRIC_QUARANTINED, "Quarantined"),
            processor(layout.METRIC_RECORDS_IN, "Records in"),
            processor(layout.METRIC_DUPLICATES, "Duplicates skipped"),
        ]),
    ]
    width, height = 12, 6
    widgets: list[dict[str, Any]] = [
        {"type": "alarm", "x": 0, "y": 0, "width": 24, "height": 3,
         "properties": {"title": "Alarms", "alarms": list(alarm_arns)}},
    ]
    for index, (title, metrics) in enumerate(graphs):
        widgets.append({
            "type": "metric",
            "x": (index % 2) * width, "y": 3 + (index // 2) * height, "width": width, "height": height,
            "properties": {
                "title": title, "region": region, "view": "timeSeries", "stacked": False,
                "period": PERIOD_SECONDS, "metrics": metrics,
            },
        })
    return pulumi.Output.json_dumps({"widgets": widgets})
