"""Lambda entry point: `handler.index.handler`, fed by the Kinesis event source mapping."""

from __future__ import annotations

import logging
import os
import time

from handler import metrics, settings
from handler.processor import Processor
from handler.storage import Archive, Deadline, MetricsTable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from typing import Protocol

    class LambdaContext(Protocol):
        """What the handler uses of Lambda's context object."""

        def get_remaining_time_in_millis(self) -> int: ...

logger = logging.getLogger("handler")
logger.setLevel(logging.INFO)

# Read once per container: a bad environment fails the cold start, naming the variable.
SETTINGS = settings.load(os.environ)
PROCESSOR = Processor(SETTINGS, MetricsTable(SETTINGS.table_name), Archive(SETTINGS.bucket_name))


def handler(event: dict, context: LambdaContext) -> dict:
    """Process one batch; return the records Lambda must retry from, and nothing else."""
    started = time.perf_counter()
    records = event.get("Records") if isinstance(event, dict) else None
    records = records if isinstance(records, list) else []
    deadline = Deadline(context.get_remaining_time_in_millis)
    try:
        report = PROCESSOR.process(records, deadline)
    except Exception:
        # An unforeseen failure must not lose the batch: retry it whole, or,
        # without a sequence number to retry from, fail so Lambda bisects it.
        logger.exception("batch failed unexpectedly; asking Lambda to retry it whole")
        first = next((r["kinesis"].get("sequenceNumber") for r in records
                      if isinstance(r, dict) and isinstance(r.get("kinesis"), dict)), None)
        if not first:
            raise
        return {"batchItemFailures": [{"itemIdentifier": first}]}
    latency_ms = (time.perf_counter() - started) * 1000
    function_name = getattr(context, "function_name", "") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    metrics.emit(report, SETTINGS.metrics_namespace, function_name, latency_ms)
    log = logger.error if report.failed_from else logger.info
    log("batch processed", extra={
        "records": report.records, "readings_stored": report.readings_stored, "duplicates": report.duplicates,
        "late_readings": report.late, "conflicts": report.conflicts, "quarantined": report.quarantined,
        "quarantine_reasons": report.quarantine_reasons, "already_quarantined": report.already_quarantined,
        "episodes_opened": report.episodes_opened, "calls": report.calls.counts,
        "write_units": report.calls.write_units, "largest_item_bytes": report.calls.largest_item_bytes,
        "failed_from": report.failed_from, "failure": report.failure, "latency_ms": round(latency_ms, 1),
    })
    return {"batchItemFailures": [{"itemIdentifier": report.failed_from}] if report.failed_from else []}
