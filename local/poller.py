"""The Kinesis event source mapping, locally: one poller per shard that batches records
as Lambda does and invokes the real handler in-process.

Batch size and batching window come from the stack's mapping; partial batch
responses are honoured by retrying from the reported sequence number; a
function error bisects the batch; after the mapping's retries, or past the
maximum record age, a batch goes to the on-failure destination (here a folder
of invocation records, as Lambda writes them to S3).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Callable

from offline.local_aws import MappingSettings

LATENCY_BUCKETS_MS = 60_000


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
    """What the handler reads of Lambda's context."""

    def __init__(self, function_name: str, timeout_s: int) -> None:
        self.function_name = function_name
        self.aws_request_id = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class ShardPoller(threading.Thread):
    def __init__(self, kinesis, stream_name: str, stream_arn: str, shard_id: str, mapping: MappingSettings,
                 invoke: Callable[[dict, Context], dict], function_name: str, timeout_s: int, failed_dir: Path,
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
        self.failed_dir = failed_dir
        self.latencies = latencies
        self.records_done = 0
        self.invocations = 0
        self.partial_retries = 0
        self.bisections = 0
        self.records_to_failure_destination = 0
        self.last_done_at = 0.0
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        self._stop_requested.set()

    def run(self) -> None:
        iterator = self.kinesis.get_shard_iterator(
            StreamName=self.stream_name, ShardId=self.shard_id, ShardIteratorType=self.mapping.starting_position,
        )["ShardIterator"]
        pending: list[dict] = []
        first_pending_at = 0.0
        window_s = self.mapping.batching_window_seconds
        while True:
            if iterator and len(pending) < self.mapping.batch_size:
                response = self.kinesis.get_records(ShardIterator=iterator,
                                                    Limit=min(10_000, self.mapping.batch_size - len(pending)))
                iterator = response.get("NextShardIterator")
                if response["Records"] and not pending:
                    first_pending_at = time.monotonic()
                pending.extend(self._event_record(r) for r in response["Records"])
            full = len(pending) >= self.mapping.batch_size
            window_over = pending and time.monotonic() - first_pending_at >= window_s
            stopping = self._stop_requested.is_set()
            if pending and (full or window_over or stopping):
                batch, pending = pending[: self.mapping.batch_size], pending[self.mapping.batch_size:]
                first_pending_at = time.monotonic()
                self._deliver(batch)
            elif stopping and not pending:
                return
            elif not full:
                # Lambda polls an idle shard about once a second; a little more often here.
                time.sleep(0.25 if not pending else 0.05)

    def _event_record(self, record: dict) -> dict:
        sequence = record["SequenceNumber"]
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                        "sequenceNumber": sequence, "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp()},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{self.shard_id}:{sequence}",
            "eventName": "aws:kinesis:record", "eventSourceARN": self.stream_arn, "awsRegion": "local",
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
            except Exception:  # noqa: BLE001 - a function error, as Lambda sees it
                if attempts >= self.mapping.maximum_retry_attempts:
                    self._give_up(records, "function error")
                elif self.mapping.bisect_on_error and len(records) > 1:
                    self.bisections += 1
                    middle = len(records) // 2
                    queue[:0] = [(records[:middle], attempts + 1), (records[middle:], attempts + 1)]
                else:
                    queue.insert(0, (records, attempts + 1))
                continue
            failures = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
            if not failures:
                self._done(records)
                continue
            first_failed = min(failures, key=int)
            index = next((i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] == first_failed), 0)
            self._done(records[:index])
            if attempts >= self.mapping.maximum_retry_attempts:
                self._give_up(records[index:], "retries exhausted")
            else:
                self.partial_retries += 1
                time.sleep(min(1.0, 0.05 * 2 ** attempts))
                queue.insert(0, (records[index:], attempts + 1))

    def _drop_expired(self, records: list[dict]) -> list[dict]:
        oldest_allowed = time.time() - self.mapping.maximum_record_age_seconds
        expired = [r for r in records if r["kinesis"]["approximateArrivalTimestamp"] < oldest_allowed]
        if expired:
            self._give_up(expired, "record age exceeded")
        return [r for r in records if r["kinesis"]["approximateArrivalTimestamp"] >= oldest_allowed]

    def _done(self, records: list[dict]) -> None:
        now_ms = time.time() * 1000
        for record in records:
            try:
                message = json.loads(base64.b64decode(record["kinesis"]["data"]))
                self.latencies.add(now_ms - message["timestamp"])
            except (ValueError, KeyError, TypeError):
                pass  # a quarantined record has no reading time to measure from
        self.records_done += len(records)
        self.last_done_at = time.monotonic()

    def _give_up(self, records: list[dict], reason: str) -> None:
        """The on-failure destination: the invocation record with the records themselves."""
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        first, last = records[0]["kinesis"]["sequenceNumber"], records[-1]["kinesis"]["sequenceNumber"]
        path = self.failed_dir / f"{self.shard_id}-{first}-{last}.json"
        path.write_text(json.dumps({"requestContext": {"condition": reason, "functionArn": self.function_name},
                                    "KinesisBatchInfo": {"shardId": self.shard_id, "startSequenceNumber": first,
                                                         "endSequenceNumber": last, "batchSize": len(records),
                                                         "streamArn": self.stream_arn},
                                    "payload": {"Records": records}}))
        self.records_to_failure_destination += len(records)
        self.records_done += len(records)
