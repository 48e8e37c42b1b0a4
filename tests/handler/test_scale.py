"""A fast device beside ordinary ones: no item limit can cost anyone a reading.

One device at 1,000 readings/s (timestamps 1 ms apart: a Kinesis shard's limit
for one partition key) for 61 s of device time, beside 30 devices at 1/s, on
one shard, in batches of 500 through the mapping model: every reading of every
device is in its windows and in the archive exactly once, and the largest
item written (the fast device's one-minute window, 60,000 readings) stays far
below DynamoDB's 400 KB.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from handler.aggregation import MAX_APPLIED_BYTES
from tests.conftest import NOW_MS, BatchBuilder, LambdaContext
from tests.mapping_model import Mapping

# A minute of a fast device through the mapping model: seconds of work by design.
pytestmark = pytest.mark.slow

DYNAMODB_ITEM_LIMIT = 400 * 1024
SECONDS = 61
FAST = "spindle-fast"


def test_a_device_at_1000_readings_per_second_costs_no_one_a_reading(index, stores, caplog):
    start = NOW_MS - NOW_MS % 60_000 - 3 * 60_000
    builder = BatchBuilder()
    sent: Counter = Counter()
    for ms in range(SECONDS * 1000):
        builder.reading(FAST, start + ms, rpm=1200.0 + ms % 17, vibration=3.0 + ms % 5 * 0.01)
        sent[FAST] += 1
        if ms % 1000 == 999:  # each ordinary device's reading of this second, behind the fast device's
            for d in range(30):
                builder.reading(f"press-{d:03d}", start + ms - 999 + d, temperature=70.0 + d % 7, vibration=2.0)
                sent[f"press-{d:03d}"] += 1
    caplog.set_level(logging.INFO, logger="handler")
    mapping = Mapping(lambda records: index.handler({"Records": records}, LambdaContext()), batch_size=500)
    mapping.run(builder.records)
    assert mapping.given_up == [] and all(a.outcome == "ok" for a in mapping.attempts)

    windows = [item for item in stores.items() if item["item_type"]["S"] == "metrics"]
    stored = Counter()
    for window in windows:
        stored[window["device_id"]["S"]] += int(window["reading_count"]["N"])
    assert stored == sent, "every reading of every device is in its windows"
    archived = stores.outcome().raw_identities()
    assert set(archived.values()) == {1} and Counter(device for device, _ in archived) == sent
    largest = max(record.largest_item_bytes for record in caplog.records if record.getMessage() == "batch processed")
    print(f"largest item written: {largest} bytes over {len(mapping.attempts)} batches")
    assert MAX_APPLIED_BYTES < largest < DYNAMODB_ITEM_LIMIT // 2, \
        f"the fast device's full minute ({largest} bytes) is far below DynamoDB's item limit"
