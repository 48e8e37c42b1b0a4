"""Whatever bytes a record holds, the handler returns normally and the record is
either stored as a reading or quarantined: never lost, never fatal."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import NOW_MS, BatchBuilder, LambdaContext

# Property searches over many generated records: seconds by design.
pytestmark = pytest.mark.slow

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
almost_messages = st.fixed_dictionaries({
    "schema_version": st.sampled_from([1, 1, 1, 2, "1", None]),
    "device_id": st.sampled_from(["press-001", "", "a" * 65, 7, "ok_device", ["press-001"], {"id": 1}]),
    "timestamp": st.one_of(st.integers(NOW_MS - 10**8, NOW_MS + 10**7), st.integers(), st.floats(allow_nan=False),
                           st.text(max_size=5)),
    "readings": st.dictionaries(st.sampled_from(["temperature", "vibration", "Bad Name", "x" * 40]),
                                st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.booleans()), max_size=4),
}).map(lambda m: json.dumps(m, allow_nan=True).encode())
payloads = st.one_of(st.binary(max_size=300), almost_messages, json_values.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(payloads, min_size=1, max_size=8))
def test_any_bytes_are_stored_or_quarantined(index, stores, raw_payloads):
    stores.clear()
    batch = BatchBuilder()
    for payload in raw_payloads:
        batch.raw(payload)
    response = index.handler(batch.event(), LambdaContext())
    assert response == {"batchItemFailures": []}
    stored = {line["kinesis_sequence_number"] for line in stores.archived_lines("raw/")}
    quarantined = {line["sequence_number"] for line in stores.archived_lines("quarantine/")}
    sequence_numbers = [r["kinesis"]["sequenceNumber"] for r in batch.records]
    # A duplicate within the batch is stored once: its first occurrence stands for it.
    decoded = [base64.b64decode(r["kinesis"]["data"]) for r in batch.records]
    for sequence_number, payload in zip(sequence_numbers, decoded):
        assert (sequence_number in stored) != (sequence_number in quarantined) or _is_duplicate(payload, decoded), (
            f"record {sequence_number} with payload {payload[:80]!r} was neither stored nor quarantined"
        )


def _is_duplicate(payload: bytes, all_payloads: list[bytes]) -> bool:
    """Another record of the batch carries the same message: the same reading
    identity (device id, timestamp), or, for a bad message with an identity,
    the same content (docs/message-format.md)."""
    identity = _identity(payload)
    return identity is not None and sum(_identity(other) == identity for other in all_payloads) > 1


def _identity(payload: bytes) -> tuple | None:
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("device_id"), str):
        return None
    timestamp = message.get("timestamp")
    return (message["device_id"], timestamp) if type(timestamp) is int else None
