"""The pipeline's CloudWatch alarms: what each one watches, when it fires, and how one is declared.

What each alarm means and what to do about it is in docs/operations.md; the metric
and dimension names are the ones AWS documents for each service (sources there too).
The audit trail's CIS alarms (components/audit.py) are declared with `create_alarm` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from handler import layout

# Every alarm and the dashboard look at five-minute windows, the unit the
# thresholds in the stack's config are stated in ("this many in 5 minutes").
PERIOD_SECONDS = 300

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


@dataclass(frozen=True)
class WatchedResources:
    """The pipeline's resources that the alarms and the dashboard watch, as their metrics name them."""

    function_name: pulumi.Input[str]
    mapping_uuid: pulumi.Input[str]
    stream_name: pulumi.Input[str]
    rule_name: pulumi.Input[str]
    table_name: pulumi.Input[str]


def alarm_name(role: str, suffix: str) -> str:
    # `_` before the suffix, which never holds one: `alarm_name("*", suffix)` then matches this
    # stack's alarms only (with `-`, the pattern for `dev` would also match a stack `team-dev`).
    return f"iot-pipeline-{role}_{suffix}"


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
    return Metric(layout.METRICS_NAMESPACE, metric_name, {layout.METRIC_DIMENSION_FUNCTION: function_name}, "Sum")


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


def alarm_specs(watched: WatchedResources, thresholds: Mapping[str, int]) -> list[AlarmSpec]:
    """Every alarm of the pipeline, from ingest to storage; `thresholds` by alarm role (the stack's config)."""
    at_least, more_than = "GreaterThanOrEqualToThreshold", "GreaterThanThreshold"
    function, mapping = watched.function_name, watched.mapping_uuid
    return [
        AlarmSpec(
            "iterator-age",
            "The processor is falling behind the stream: records reach it longer than the threshold after "
            "they entered the stream, and the stream deletes them at its retention.",
            thresholds["iterator-age"], more_than, _lambda("IteratorAge", "Maximum", "FunctionName", function),
        ),
        AlarmSpec(
            "processor-errors", "The processor failed whole invocations (exception, timeout, out of memory).",
            thresholds["processor-errors"], at_least, _lambda("Errors", "Sum", "FunctionName", function),
        ),
        AlarmSpec(
            "processor-throttles", "Invocations of the processor were throttled (concurrency limit).",
            thresholds["processor-throttles"], at_least, _lambda("Throttles", "Sum", "FunctionName", function),
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
            thresholds["records-to-failure-destination"], at_least,
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
            thresholds["rule-action-failures"], at_least, queries=_rule_action_query("Failure", watched.rule_name),
        ),
        AlarmSpec(
            "rule-error-action-failures",
            "The topic rule could not deliver a message to the stream nor to its error log group: "
            "that message is lost.",
            ANY_LOSS, at_least, queries=_rule_action_query("ErrorActionFailure", watched.rule_name),
        ),
        AlarmSpec(
            "metrics-table-throttles", "DynamoDB throttled reads or writes on the metrics table.",
            thresholds["metrics-table-throttles"], at_least, queries=_table_throttle_queries(watched.table_name),
        ),
        AlarmSpec(
            "records-quarantined",
            "More records than the threshold failed validation in five minutes and were quarantined.",
            thresholds["records-quarantined"], more_than, _processor_metric(layout.METRIC_QUARANTINED, function),
        ),
        AlarmSpec(
            "anomalies",
            "More anomaly episodes than the threshold were opened in five minutes, across all devices and kinds.",
            thresholds["anomalies"], more_than, _processor_metric(layout.METRIC_ANOMALIES, function),
        ),
    ]
