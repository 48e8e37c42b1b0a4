"""CloudWatch metrics in embedded metric format: one JSON line on stdout per
document, which Lambda's log group turns into metrics without an API call."""

from __future__ import annotations

import json
import sys
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from typing import TextIO

from handler import layout
from handler.processor import BatchReport


def _document(namespace: str, dimensions: dict[str, str], values: dict[str, tuple[float, str]]) -> str:
    document: dict = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [sorted(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
            }],
        },
        **dimensions,
    }
    document.update({name: value for name, (value, _) in values.items()})
    return json.dumps(document, separators=(",", ":"))


def emit(report: BatchReport, namespace: str, function_name: str, latency_ms: float,
         stream: TextIO | None = None) -> None:
    dimensions = {layout.METRIC_DIMENSION_FUNCTION: function_name}
    lines = [_document(namespace, dimensions, {
        layout.METRIC_RECORDS_IN: (report.records, "Count"),
        layout.METRIC_READINGS_STORED: (report.readings_stored, "Count"),
        # Replayed or re-sent bad records are duplicates as much as readings are.
        layout.METRIC_DUPLICATES: (report.duplicates + report.already_quarantined, "Count"),
        layout.METRIC_QUARANTINED: (report.quarantined, "Count"),
        layout.METRIC_ANOMALIES: (sum(report.anomalies.values()), "Count"),
        layout.METRIC_BATCH_LATENCY: (round(latency_ms, 3), "Milliseconds"),
        layout.METRIC_BATCHES_FAILED: (1 if report.failed_from else 0, "Count"),
    })]
    for kind, count in sorted(report.anomalies.items()):
        lines.append(_document(namespace, {**dimensions, layout.METRIC_DIMENSION_ANOMALY_KIND: kind},
                               {layout.METRIC_ANOMALIES: (count, "Count")}))
    (stream or sys.stdout).write("\n".join(lines) + "\n")
