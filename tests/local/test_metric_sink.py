"""The processor's metric lines stay whole when many pollers invoke it at once, as in the local run."""

import json
import threading

from handler.layout import METRIC_DIMENSION_ANOMALY_KIND, METRIC_RECORDS_IN, METRIC_READINGS_STORED
from local.metric_sink import MetricLineSink
from local.poller import LatencyHistogram, ShardPoller
from harness.provision import MappingSettings
from tests.conftest import NOW_MS, BatchBuilder

POLLERS = 8
BATCHES_PER_POLLER = 5
BATCH_SIZE = 20
STREAM_ARN = "arn:aws:kinesis:ap-southeast-1:123456789012:stream/iot-sensor-stream-dev"


def shard_batches(shard: int) -> list[list[dict]]:
    """Readings of this shard's own device, with this shard's event ids, cut into mapping batches."""
    builder = BatchBuilder()
    for i in range(BATCHES_PER_POLLER * BATCH_SIZE):
        record = builder.reading(f"press-{shard:03d}", NOW_MS - 300_000 + i * 1000,
                                 temperature=70.0 + (i % 7) * 0.1, vibration=2.0 + (i % 5) * 0.01)
        record["eventID"] = f"shardId-{shard:012d}:{record['kinesis']['sequenceNumber']}"
    return [builder.records[start:start + BATCH_SIZE] for start in range(0, len(builder.records), BATCH_SIZE)]


def test_every_metric_line_parses_when_many_pollers_invoke_the_processor_at_once(stores, index, tmp_path):
    mapping = MappingSettings(batch_size=BATCH_SIZE, batching_window_seconds=0, maximum_retry_attempts=2,
                              maximum_record_age_seconds=10 ** 9, bisect_on_error=True,
                              report_batch_item_failures=True, starting_position="TRIM_HORIZON")
    pollers = [ShardPoller(None, "iot-sensor-stream-dev", STREAM_ARN, f"shardId-{n:012d}", mapping, index.handler,
                           "iot-processor-dev", 60, lambda *failed: None, LatencyHistogram())
               for n in range(POLLERS)]
    batches = [shard_batches(n) for n in range(POLLERS)]
    # Every poller starts delivering at the same moment, so their invocations overlap.
    start = threading.Barrier(POLLERS)

    def deliver(poller: ShardPoller, its_batches: list[list[dict]]) -> None:
        start.wait()
        for batch in its_batches:
            poller._deliver(batch)

    sink = MetricLineSink(tmp_path / "processor-metrics.jsonl")
    sink.install()
    try:
        threads = [threading.Thread(target=deliver, args=pair) for pair in zip(pollers, batches)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sink.close()

    raw = (tmp_path / "processor-metrics.jsonl").read_bytes()
    lines = raw.decode("utf-8").splitlines()
    documents = [json.loads(line) for line in lines]
    assert all("_aws" in document for document in documents), "a metric line lost its EMF envelope"
    per_invocation = [d for d in documents if METRIC_DIMENSION_ANOMALY_KIND not in d]
    invocations = sum(p.invocations for p in pollers)
    assert len(per_invocation) == invocations == POLLERS * BATCHES_PER_POLLER
    assert sum(d[METRIC_RECORDS_IN] for d in per_invocation) == POLLERS * BATCHES_PER_POLLER * BATCH_SIZE
    assert sum(d[METRIC_READINGS_STORED] for d in per_invocation) == POLLERS * BATCHES_PER_POLLER * BATCH_SIZE
    assert sink.lines == len(lines)
