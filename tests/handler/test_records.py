"""Decoding and validation on plain data: every input becomes a Reading or a
Rejected with a reason, and a Reading is always one the stores can hold."""

import base64
import json
import os
import subprocess
import sys

from hypothesis import example, given, settings, strategies as st

from handler import items
from handler.core import Planner, sort_batch
from handler.detection import Detector
from handler.detector_settings import DetectorSettings
from handler.message_format import KNOWN_SENSORS
from handler.processor import Processor, archive_line
from handler.quarantine import line
from handler.records import LATEST_PLAUSIBLE_MS, Reading, Rejected, content_digest, parse_record

PLANNER = Planner(Detector({name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()},
                           DetectorSettings()), ttl_days=30)


def _plan_alone(parsed) -> None:
    """Everything the processor builds from one record, in memory: it must not raise."""
    for plan in PLANNER.plan(sort_batch([parsed]), {}):
        for write in plan.writes:
            items.item_size(write.item)
    Processor._object_key("raw", parsed, 0)

NOW_MS = 1_795_081_600_000

any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
plausible_or_any_int = st.one_of(st.integers(NOW_MS - 10**9, NOW_MS + 10**7), st.integers(), any_json)
messages = st.fixed_dictionaries(
    {"schema_version": st.one_of(st.just(1), any_json),
     "device_id": st.one_of(st.sampled_from(["press-001", "a" * 64]), any_json),
     "timestamp": plausible_or_any_int,
     "readings": st.one_of(st.dictionaries(st.sampled_from(["temperature", "vibration", "x" * 33, "Bad"]),
                                           st.one_of(st.floats(), st.integers(), any_json), max_size=4), any_json)},
    optional={"received_at": plausible_or_any_int, "topic_device_id": st.one_of(st.just("press-001"), any_json),
              "sequence": any_json, "firmware": any_json},
)
arrivals = st.one_of(st.floats(), st.integers(), st.none(), st.text(max_size=3))


def _record(data: bytes, arrival, sequence_number="7") -> dict:
    return {"kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": sequence_number,
                        "approximateArrivalTimestamp": arrival}, "eventID": f"shardId-000000000000:{sequence_number}"}


@settings(max_examples=400, deadline=None)
@given(messages, arrivals)
def test_any_message_is_a_storable_reading_or_rejected_with_a_reason(message, arrival):
    parsed = parse_record(_record(json.dumps(message).encode(), arrival))
    assert isinstance(parsed, (Reading, Rejected))
    if isinstance(parsed, Rejected):
        assert parsed.reason and parsed.detail and len(parsed.detail) < 400
        return
    # What the processor builds from a reading must not fail on any accepted value.
    assert 0 < parsed.timestamp_ms < LATEST_PLAUSIBLE_MS
    items.window_key(parsed.device_id, parsed.timestamp_ms)
    _plan_alone(parsed)
    json.loads(archive_line(parsed))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), arrivals, st.one_of(st.text(max_size=5), st.integers(), st.none()))
@example(b"x", 0.0, "\u00b2")  # a digit to str.isdigit(), not to int()
def test_any_bytes_any_event_fields_never_raise(data, arrival, sequence_number):
    parsed = parse_record(_record(data, arrival, sequence_number))
    assert isinstance(parsed, (Reading, Rejected))
    _plan_alone(parsed)
    if isinstance(parsed, Rejected):
        json.loads(line(parsed))


def test_any_event_shape_is_rejected_as_malformed():
    for record in (None, 7, "x", [], {}, {"kinesis": None}, {"kinesis": {"data": 5}}):
        parsed = parse_record(record)
        assert isinstance(parsed, Rejected) and parsed.reason == "malformed_event", record


def test_unhashable_device_id_is_rejected_naming_the_field():
    message = {"schema_version": 1, "device_id": ["press-001"], "timestamp": NOW_MS, "readings": {"t": 1.0}}
    parsed = parse_record(_record(json.dumps(message).encode(), NOW_MS / 1000))
    assert (parsed.reason, parsed.detail.split(" is ")[0]) == ("device_id", "device_id")


def _message(**fields) -> dict:
    return {"schema_version": 1, "device_id": "press-001", "timestamp": NOW_MS,
            "readings": {"temperature": 70.0}, **fields}


def test_names_with_a_trailing_newline_are_rejected():
    # `$` matches before a final newline; the patterns must not.
    cases = {
        "readings": _message(readings={"temperature\n": 70.0}),
        "device_id": _message(device_id="press-001\n", topic_device_id="press-001\n"),
    }
    for reason, message in cases.items():
        parsed = parse_record(_record(json.dumps(message).encode(), NOW_MS / 1000))
        assert isinstance(parsed, Rejected) and parsed.reason == reason, (message, parsed)
    accepted = parse_record(_record(json.dumps(_message(topic_device_id="press-001")).encode(), NOW_MS / 1000))
    assert isinstance(accepted, Reading) and accepted.values == {"temperature": 70.0}


def test_json_around_the_compact_object_is_decoded_as_the_json_decoder_does():
    compact = json.dumps(_message(topic_device_id="press-001"), separators=(",", ":"))
    for text in (compact, " " + compact, "\n" + compact + "\r\n", json.dumps(_message(), indent=2)):
        parsed = parse_record(_record(text.encode(), NOW_MS / 1000))
        assert isinstance(parsed, Reading) and parsed.values == {"temperature": 70.0}, repr(text)
    refused = {
        compact + ' {"x": 1}': "extra data after the JSON value at character",
        compact.replace("70.0", "NaN"): "NaN is not valid JSON",
        compact[:-1]: "Expecting ',' delimiter",
        "": "Expecting value: line 1 column 1 (char 0)",
        "  ": "Expecting value: line 1 column 3 (char 2)",
    }
    for text, detail in refused.items():
        parsed = parse_record(_record(text.encode(), NOW_MS / 1000))
        assert isinstance(parsed, Rejected) and parsed.reason == "not_json", repr(text)
        assert parsed.detail.startswith(detail), (text, parsed.detail)


def test_the_content_digest_is_the_stored_one_whatever_the_sensor_order():
    # Window items hold these digests: a stored reading delivered again must digest the same.
    message = {**_message(readings={"temperature": 70.25, "vibration": 3, "pressure": 101.325}),
               "topic_device_id": "press-001", "received_at": NOW_MS + 150}
    reordered = {**message, "readings": {"vibration": 3.0, "pressure": 101.325, "temperature": 70.25}}
    assert content_digest(message) == content_digest(reordered) == 42727
    assert content_digest({**message, "received_at": NOW_MS + 999}) == 42727
    assert content_digest({**message, "firmware": "v1.2", "sequence": 7}) == 37908
    assert content_digest({**message, "readings": {"temperature": 70.25}}) == 17491


def test_of_several_bad_optional_fields_the_detail_names_the_first_in_the_formats_order():
    # Whatever the process's hash seed: the detail is stored with the quarantined record.
    script = ("import base64, json; from handler.records import parse_record; "
              "m = {'schema_version': 1, 'device_id': 'p-1', 'timestamp': 1795081600000, 'readings': {'t': 1.0}, "
              "'line': 5, 'site': 5, 'firmware': 5}; "
              "print(parse_record({'kinesis': {'data': base64.b64encode(json.dumps(m).encode()).decode(), "
              "'approximateArrivalTimestamp': 1795081600.0}}).detail)")
    details = {subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                              capture_output=True, text=True, check=True).stdout.strip() for seed in range(6)}
    assert details == {"firmware must be text of at most 64 characters"}


def test_details_stay_short_whatever_the_bad_value():
    huge = ["x" * 1000]
    for message in (_message(schema_version=huge), _message(readings={"y" * 1000: 1.0}), _message(sequence=huge)):
        parsed = parse_record(_record(json.dumps(message).encode(), NOW_MS / 1000))
        assert isinstance(parsed, Rejected) and len(parsed.detail) < 200, parsed.detail
