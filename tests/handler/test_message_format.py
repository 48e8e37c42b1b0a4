"""The topic layout per stack, thing names, MQTT filter matching and the rule's projection."""

import itertools
import json

import pytest

from handler import message_format as fmt


def test_each_stack_publishes_and_selects_its_own_namespace():
    assert fmt.telemetry_topic("dev", "press-001") == "factory/dev/telemetry/press-001"
    assert fmt.topic_filter("prod") == "factory/prod/telemetry/+"
    assert fmt.rule_sql("dev") == (
        "SELECT *, topic(4) AS topic_device_id, timestamp() AS received_at FROM 'factory/dev/telemetry/+'")
    assert fmt.KINESIS_PARTITION_KEY_TEMPLATE == "${topic(4)}"
    assert fmt.topic_level(fmt.telemetry_topic("dev", "press-001"), fmt.DEVICE_ID_TOPIC_LEVEL) == "press-001"


@pytest.mark.parametrize("suffix, device_id", [
    ("dev/x", "press-001"), ("+", "press-001"), ("dev", "press/001"), ("dev", "#"), ("dev\n", "press-001"),
    ("dev", "press-001\n"), ("", "press-001"), ("dev_a", "press-001"),
])
def test_topics_refuse_levels_that_would_leave_the_namespace(suffix, device_id):
    with pytest.raises(ValueError):
        fmt.telemetry_topic(suffix, device_id)


def test_thing_names_are_unique_per_stack_and_device():
    suffixes, devices = ["a", "a-b", "b", "dev"], ["c", "b-c", "a_b", "c_a", "press-001"]
    names = {(s, d): fmt.thing_name(s, d) for s, d in itertools.product(suffixes, devices)}
    assert len(set(names.values())) == len(names), names
    assert fmt.thing_name("dev", "press-001") == "press-001_dev"
    assert len(fmt.thing_name("x" * 63, "d" * 64)) == 128


@pytest.mark.parametrize("topic, topic_filter, matches", [
    ("factory/dev/telemetry/press-001", "factory/dev/telemetry/+", True),
    ("factory/prod/telemetry/press-001", "factory/dev/telemetry/+", False),
    ("factory/dev/telemetry/press-001/x", "factory/dev/telemetry/+", False),
    ("factory/dev/telemetry", "factory/dev/telemetry/+", False),
    ("factory/dev/telemetry/press-001", "factory/#", True),
    ("factory", "factory/#", True),
    ("factory/dev/telemetry/+", "factory/dev/telemetry/+", False),
])
def test_topic_matching_follows_mqtt(topic, topic_filter, matches):
    assert fmt.topic_matches_filter(topic, topic_filter) is matches


@pytest.mark.parametrize("first, second, overlap", [
    ("factory/dev/telemetry/+", "factory/dev/telemetry/#", True),
    ("factory/dev/telemetry/+", "factory/prod/telemetry/#", False),
    ("factory/+/telemetry/+", "factory/prod/telemetry/press-001", True),
    ("factory/dev/telemetry/+", "factory/dev/telemetry/+/x", False),
    ("#", "anything/at/all", True),
])
def test_filters_overlap_when_some_topic_matches_both(first, second, overlap):
    assert fmt.filters_overlap(first, second) is overlap
    assert fmt.filters_overlap(second, first) is overlap


def test_projection_adds_the_topic_device_id_and_keys_by_it():
    payload = json.dumps(fmt.build_message("press-001", 1_795_081_600_000, {"temperature": 70.0})).encode()
    data, key = fmt.project("factory/dev/telemetry/press-001", payload, 1_795_081_600_150, suffix="dev")
    assert key == "press-001"
    assert json.loads(data) == {"schema_version": 1, "device_id": "press-001", "timestamp": 1_795_081_600_000,
                                "readings": {"temperature": 70.0}, "topic_device_id": "press-001",
                                "received_at": 1_795_081_600_150}


def test_projection_refuses_another_stacks_topic():
    with pytest.raises(ValueError, match="factory/dev/telemetry/"):
        fmt.project("factory/prod/telemetry/press-001", b"{}", 0, suffix="dev")
