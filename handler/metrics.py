"""CloudWatch metrics in embedded metric format: one JSON line on stdout per
document, which Lambda's log group turns into metrics without an API call."""

from __future__ import annotations

import json
import sys
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from typing import Callable, TextIO

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


# Where emit() writes when no stream is given; None is stdout, as Lambda reads it. A host that
# runs the handler on several threads at once (the local run) sets one thread-safe writer here:
# one text stream shared by threads can interleave or corrupt their lines.
_sink: Callable[[str], object] | None = None


def set_sink(write: Callable[[str], object] | None) -> None:
    """Send every EMF document to `write` (called once per invocation's lines); None: stdout again."""
    global _sink
    _sink = write


def emit(report: BatchReport, namespace: str, function_name: str, latency_ms: float,
         stream: TextIO | None = None) -> None:
    dimensions = {layout.METRIC_DIMENSION_FUNCTION: function_name}
    lines = [_document(namespace, dimensions, {
        layout.METRIC_RECORDS_IN: (report.records, "Count"),
        layout.METRIC_READINGS_STORED: (report.readings_stored, "Count"),
        # Replayed or re-sent bad records are duplicates as much as readings are.
        layout.METRIC_DUPLICATES: (report.duplicates + report.already_quarantined, "Count"),
        layout.METRIC_QUARANTINED: (report.quarantined, "Count"),
        layout.METRIC_CONFLICTS: (report.conflicts, "Count"),
        layout.METRIC_LATE: (report.late, "Count"),
        # Episodes opened: one per anomaly, however long it lasts.
        layout.METRIC_ANOMALIES: (sum(report.episodes_opened.values()), "Count"),
        layout.METRIC_BATCH_LATENCY: (round(latency_ms, 3), "Milliseconds"),
        layout.METRIC_BATCHES_FAILED: (1 if report.failed_from else 0, "Count"),
    })]
    for kind, count in sorted(report.episodes_opened.items()):
        lines.append(_document(namespace, {**dimensions, layout.METRIC_DIMENSION_ANOMALY_KIND: kind},
                               {layout.METRIC_ANOMALIES: (count, "Count")}))
    text = "\n".join(lines) + "\n"
    if stream is not None:
        stream.write(text)
    else:
        (_sink or sys.stdout.write)(text)
