"""The pipeline's CloudWatch dashboard: its metrics on one page, in the order data flows."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi

from components.alarms import (MAPPING_DROPPED, MAPPING_SENT_TO_FAILURE_DESTINATION, PERIOD_SECONDS,
                               WatchedResources)
from handler import layout


def dashboard_body(watched: WatchedResources, region: pulumi.Input[str],
                   alarm_arns: Sequence[pulumi.Input[str]]) -> pulumi.Output[str]:
    """The pipeline on one page, in the order data flows through it, the alarms' states on top."""
    function, stream, table = watched.function_name, watched.stream_name, watched.table_name
    mapping = watched.mapping_uuid

    def line(namespace: str, metric_name: str, dimensions: Mapping[str, pulumi.Input[str]], stat: str,
             label: str) -> list[Any]:
        flat = [part for pair in dimensions.items() for part in pair]
        return [namespace, metric_name, *flat, {"stat": stat, "label": label}]

    def processor(metric_name: str, label: str, stat: str = "Sum", **extra: pulumi.Input[str]) -> list[Any]:
        return line(layout.METRICS_NAMESPACE, metric_name, {layout.METRIC_DIMENSION_FUNCTION: function, **extra},
                    stat, label)

    def rule_actions(metric_name: str, label: str) -> list[Any]:
        # SEARCH: one line per action type, whatever IoT names them.
        search = pulumi.Output.concat(
            "SEARCH('{AWS/IoT,ActionType,RuleName} MetricName=\"", metric_name, "\" RuleName=\"",
            watched.rule_name, "\"', 'Sum', ", str(PERIOD_SECONDS), ")",
        )
        return [{"expression": search, "label": label, "id": metric_name.lower()}]

    graphs: list[tuple[str, list[list[Any]]]] = [
        ("Ingest rate (per 5 minutes)", [
            line("AWS/IoT", "TopicMatch", {"RuleName": watched.rule_name}, "Sum", "Messages matching the rule"),
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
