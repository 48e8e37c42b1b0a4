"""The Kinesis event source mapping, locally: one poller per shard that batches records
as Lambda does and invokes the real handler in-process.

Batch size and batching window come from the stack's mapping. A response is
read as Lambda reads it (`retry_from`): with ReportBatchItemFailures on, the
batch is retried from the lowest reported sequence number, and an empty, null
or unknown identifier fails the whole batch. A function error bisects the
batch. After the mapping's retries, or past the maximum record age, the
records go to the on-failure destination.

One batch at a time per shard: the local run ignores a parallelization factor
above 1 (order per device is the same either way; only the real mapping's
concurrency differs).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from typing import Callable

from harness.provision import MappingSettings

logger = logging.getLogger("local.poller")

LATENCY_BUCKETS_MS = 60_000
# GetRecords may fail while moto's server is busy; a poller gives up only after this many in a row.
MAX_READ_ATTEMPTS = 8
# Lambda's own names for why a batch went to the on-failure destination.
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"

Invoke = Callable[[dict, "Context"], dict]
# (shard id, the event records that gave up, the condition) -> None
FailureDestination = Callable[[str, list[dict], str], None]


class LatencyHistogram:
    """End-to-end latencies in 1 ms buckets: constant memory however long the run."""

    def __init__(self) -> None:
        self.counts = [0] * (LATENCY_BUCKETS_MS + 1)
        self.total = 0
        self._lock = threading.Lock()

    def add(self, latency_ms: float) -> None:
        with self._lock:
            self.counts[min(LATENCY_BUCKETS_MS, max(0, int(latency_ms)))] += 1
            self.total += 1

    def percentile(self, fraction: float) -> float | None:
        if not self.total:
            return None
        rank, seen = fraction * self.total, 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return float(bucket)
        return float(LATENCY_BUCKETS_MS)


class Context:
    """What the handler reads of Lambda's context: a fresh request id and deadline per invocation."""

    def __init__(self, function_name: str, timeout_s: int) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def retry_from(response: object, records: list[dict], reports_item_failures: bool) -> int | None:
    """Where Lambda resumes after this response: the index of the first record to retry, or None.

    Without ReportBatchItemFailures on the mapping, Lambda ignores the response.
    With it, an empty or missing list is a success; otherwise Lambda checkpoints
    before the lowest reported sequence number, and an identifier that is empty,
    null or not in the batch fails the whole batch (AWS's "partial batch
    response" success and failure conditions).
    """
    if not reports_item_failures or not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    positions = {record["kinesis"]["sequenceNumber"]: index for index, record in enumerate(records)}
    reported = []
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in positions:
            return 0
        reported.append(positions[identifier])
    return min(reported)


class ShardPoller(threading.Thread):
    """Reads one shard and invokes the function with its batches, in order, until stopped.

    A poller that cannot go on (its shard unreadable, its failure destination
    unwritable) keeps the exception in `error` and stops; the run reports it.
    """

    def __init__(self, kinesis, stream_name: str, stream_arn: str, shard_id: str, mapping: MappingSettings,
                 invoke: Invoke, function_name: str, timeout_s: int, on_failure: FailureDestination,
                 latencies: LatencyHistogram) -> None:
        super().__init__(name=f"poller-{shard_id}", daemon=True)
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.stream_arn = stream_arn
        self.shard_id = shard_id
        self.mapping = mapping
        self.invoke = invoke
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.latencies = latencies
        self.records_done = 0
        self.invocations = 0
        self.function_errors = 0
        self.partial_retries = 0
        self.bisections = 0
        self.records_to_failure_destination = 0
        self.last_done_at = 0.0
        self.error: BaseException | None = None
        self._last_sequence_read: str | None = None
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        """Finish what has been read (without waiting out the batching window), then return."""
        self._stop_requested.set()

    def run(self) -> None:
        try:
            self._poll()
        except Exception as error:  # kept for the run to report; a thread cannot raise
            logger.exception("poller for %s stopped", self.shard_id)
            self.error = error

    def _poll(self) -> None:
        iterator = self._iterator(self.mapping.starting_position)
        pending: list[dict] = []
        first_pending_at = 0.0
        while True:
            if len(pending) < self.mapping.batch_size:
                records, iterator = self._read(iterator, self.mapping.batch_size - len(pending))
                if records and not pending:
                    first_pending_at = time.monotonic()
                pending.extend(self._event_record(r) for r in records)
            full = len(pending) >= self.mapping.batch_size
            window_over = pending and time.monotonic() - first_pending_at >= self.mapping.batching_window_seconds
            stopping = self._stop_requested.is_set()
            if pending and (full or window_over or stopping):
                batch, pending = pending[: self.mapping.batch_size], pending[self.mapping.batch_size:]
                first_pending_at = time.monotonic()
                self._deliver(batch)
            elif stopping:
                return
            elif not full:
                # Lambda polls an idle shard about once a second; a little more often here.
                time.sleep(0.25 if not pending else 0.05)

    def _iterator(self, position: str) -> str:
        arguments = {"StreamName": self.stream_name, "ShardId": self.shard_id, "ShardIteratorType": position}
        if position == "AFTER_SEQUENCE_NUMBER":
            arguments["StartingSequenceNumber"] = self._last_sequence_read
        return self.kinesis.get_shard_iterator(**arguments)["ShardIterator"]

    def _read(self, iterator: str, limit: int) -> tuple[list[dict], str]:
        """One GetRecords call, retried with a fresh iterator from where the last read ended."""
        for attempt in range(MAX_READ_ATTEMPTS):
            try:
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=min(10_000, limit))
                if response["Records"]:
                    self._last_sequence_read = response["Records"][-1]["SequenceNumber"]
                return response["Records"], response["NextShardIterator"]
            except Exception as error:  # a busy or restarting local server
                if attempt == MAX_READ_ATTEMPTS - 1:
                    raise
                logger.warning("GetRecords on %s failed (%s); retrying", self.shard_id, error)
                time.sleep(0.1 * 2 ** attempt)
                position = "AFTER_SEQUENCE_NUMBER" if self._last_sequence_read else self.mapping.starting_position
                iterator = self._iterator(position)
        raise AssertionError("unreachable")

    def _event_record(self, record: dict) -> dict:
        sequence = record["SequenceNumber"]
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                        "sequenceNumber": sequence, "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp()},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{self.shard_id}:{sequence}",
            "eventName": "aws:kinesis:record", "eventSourceARN": self.stream_arn,
            "awsRegion": self.stream_arn.split(":")[3],
        }

    def _deliver(self, batch: list[dict]) -> None:
        """Invoke until the batch is done, as Lambda does for a stream: retry, bisect, give up."""
        queue = [(batch, 0)]
        while queue:
            records, attempts = queue.pop(0)
            records = self._drop_expired(records)
            if not records:
                continue
            self.invocations += 1
            try:
                response = self.invoke({"Records": records}, Context(self.function_name, self.timeout_s))
            except Exception:  # a function error, as Lambda sees it
                self.function_errors += 1
                logger.warning("function error on %d records from %s", len(records), self.shard_id, exc_info=True)
                if attempts >= self.mapping.maximum_retry_attempts:
                    self._give_up(records, RETRIES_EXHAUSTED)
                elif self.mapping.bisect_on_error and len(records) > 1:
                    self.bisections += 1
                    middle = len(records) // 2
                    queue[:0] = [(records[:middle], attempts + 1), (records[middle:], attempts + 1)]
                else:
                    queue.insert(0, (records, attempts + 1))
                continue
            index = retry_from(response, records, self.mapping.report_batch_item_failures)
            if index is None:
                self._done(records)
                continue
            self._done(records[:index])
            if attempts >= self.mapping.maximum_retry_attempts:
                self._give_up(records[index:], RETRIES_EXHAUSTED)
            else:
                self.partial_retries += 1
                # Lambda backs off between retries of a failing batch.
                time.sleep(min(1.0, 0.05 * 2 ** attempts))
                queue.insert(0, (records[index:], attempts + 1))

    def _drop_expired(self, records: list[dict]) -> list[dict]:
        oldest_allowed = time.time() - self.mapping.maximum_record_age_seconds
        expired = [r for r in records if r["kinesis"]["approximateArrivalTimestamp"] < oldest_allowed]
        if expired:
            self._give_up(expired, RECORD_AGE_EXCEEDED)
        return [r for r in records if r["kinesis"]["approximateArrivalTimestamp"] >= oldest_allowed]

    def _done(self, records: list[dict]) -> None:
        now_ms = time.time() * 1000
        for record in records:
            try:
                message = json.loads(base64.b64decode(record["kinesis"]["data"]))
                self.latencies.add(now_ms - message["timestamp"])
            except (ValueError, KeyError, TypeError):
                pass  # a quarantined record may have no reading time to measure from
        self.records_done += len(records)
        self.last_done_at = time.monotonic()

    def _give_up(self, records: list[dict], condition: str) -> None:
        self.on_failure(self.shard_id, records, condition)
        self.records_to_failure_destination += len(records)
        self.records_done += len(records)
