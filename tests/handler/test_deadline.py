"""The deadline bounds every call: against a slow or throttling AWS (tests/fault_proxy.py in front of
moto's server) and a context whose remaining time runs down with the wall clock, the handler returns
before that time is up, reporting the batch from its first record, and the retry converges once AWS
is healthy again.

The bound asserted is the property itself: the response arrives while the context still has time left
(Lambda would otherwise kill the invocation mid-write).
"""

from __future__ import annotations

import pytest

from tests.conftest import NOW_MS, BatchBuilder, LambdaContext, RunningContext, sequence
from tests.fault_proxy import THROTTLED

# Each case waits out a deadline against a slow or throttling AWS: seconds by design.
pytestmark = pytest.mark.slow

DYNAMODB_OPERATIONS = ("dynamodb.BatchGetItem", "dynamodb.TransactWriteItems")


def _batch(devices: int) -> BatchBuilder:
    """Readings of `devices` devices (a window and a state to read and write each) and a garbage record."""
    batch = BatchBuilder()
    for i in range(1 if devices > 10 else 3):
        for d in range(devices):
            batch.reading(f"press-{d:03d}", NOW_MS - 120_000 + i * 1000, temperature=70.0 + d % 40, vibration=2.0)
    batch.raw(b"garbage")
    return batch


def _clean(index, stores, batch):
    stores.clear()
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    outcome = stores.outcome()
    stores.clear()
    return outcome


def _in_time_then_converges(index, stores, fault_proxy, batch, remaining_ms: int, faults: dict[str, dict]) -> None:
    expected = _clean(index, stores, batch)
    for operation, fault in faults.items():
        fault_proxy.set(operation, **fault)
    context = RunningContext(remaining_ms)
    response = index.handler(batch.event(), context)
    left_ms = context.get_remaining_time_in_millis()
    assert left_ms > 0, "the handler returned after the function's timeout"
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence(batch.records[0])}]}
    fault_proxy.clear()
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert stores.outcome() == expected, "the retry on a healthy AWS is one clean delivery"


@pytest.mark.parametrize("devices, remaining_ms, slow", [
    (3, 3_000, DYNAMODB_OPERATIONS),
    (200, 5_000, DYNAMODB_OPERATIONS),
    (200, 5_000, ("dynamodb.TransactWriteItems",)),  # the writes land, their answers come too late
], ids=["3 devices, 3 s", "200 devices, 5 s", "200 devices, 5 s, slow writes only"])
def test_a_slow_table_cannot_keep_the_handler_past_its_deadline(index, stores, fault_proxy, devices, remaining_ms,
                                                                 slow):
    _in_time_then_converges(index, stores, fault_proxy, _batch(devices), remaining_ms,
                            {operation: {"latency_s": 1.2} for operation in slow})


def test_a_throttling_table_cannot_keep_the_handler_past_its_deadline(index, stores, fault_proxy):
    _in_time_then_converges(index, stores, fault_proxy, _batch(20), 3_000,
                            {"dynamodb.TransactWriteItems": {"error": THROTTLED}})
    assert fault_proxy.seen.count("dynamodb.TransactWriteItems") > 2, "the throttled write was retried in time"
