"""The detector on plain data: each kind fires where it should, and not on normal noise."""

import random

from handler.detection import DRIFT, JUMP, LIMIT, SPIKE, STUCK, Detector, DeviceState
from handler.settings import DetectorSettings

LIMITS = {"temperature": (-40.0, 150.0)}


def _run(values, settings=DetectorSettings()):
    detector, state, found = Detector(LIMITS, settings), DeviceState(), []
    for i, value in enumerate(values):
        detector.observe(state, "press-001", 1_700_000_000_000 + i * 1000, {"temperature": value}, str(i), found)
    return found, state


def _noise(n, seed=1, level=70.0, sigma=0.5):
    rng = random.Random(seed)
    return [level + rng.gauss(0, sigma) for _ in range(n)]


def test_normal_noise_raises_nothing():
    found, state = _run(_noise(2000))
    assert found == []
    assert abs(state.sensors["temperature"].mean - 70.0) < 0.3


def test_single_outlier_is_a_spike_and_does_not_move_the_model():
    values = _noise(200)
    values[150] = 85.0
    found, state = _run(values)
    assert [(a.kind, a.timestamp_ms % 1_000_000 // 1000) for a in found] == [(SPIKE, 150)]
    assert found[0].expected_low < 70 < found[0].expected_high and found[0].score > 6


def test_level_shift_is_one_jump_at_its_first_reading_and_no_spikes():
    values = _noise(200) + [v + 15 for v in _noise(50, seed=2)]
    found, state = _run(values)
    assert [(a.kind, a.timestamp_ms % 1_000_000 // 1000) for a in found] == [(JUMP, 200)]
    assert abs(state.sensors["temperature"].mean - 85.0) < 1.0, "the model restarts at the new level"


def test_outliers_on_both_sides_are_spikes_not_a_jump():
    values = _noise(200)
    values[150], values[151] = 85.0, 55.0
    found, _ = _run(values)
    assert [(a.kind, a.timestamp_ms % 1_000_000 // 1000) for a in found] == [(SPIKE, 150), (SPIKE, 151)]


def test_an_outlier_held_at_the_end_of_a_batch_is_decided_in_the_next():
    from handler import items
    values = _noise(200)
    values[199] = 85.0
    first_batch, state = _run(values)
    assert first_batch == [], "the last reading's outlier waits for the next reading"
    restored = items.parse_state(items.state_item("press-001", state, 30))
    detector, found = Detector(LIMITS, DetectorSettings()), []
    detector.observe(restored, "press-001", 1_700_000_000_000 + 200_000, {"temperature": 70.1}, "200", found)
    assert [(a.kind, a.value, a.timestamp_ms) for a in found] == [(SPIKE, 85.0, 1_700_000_000_000 + 199_000)]


def test_flat_line_is_stuck_once():
    values = _noise(100) + [71.25] * 50
    found, _ = _run(values)
    assert [a.kind for a in found] == [STUCK]
    assert found[0].timestamp_ms % 1_000_000 // 1000 == 100 + 19


def test_slow_ramp_is_drift():
    values = [v + max(0, i - 300) * 0.02 for i, v in enumerate(_noise(800))]
    found, _ = _run(values)
    kinds = [a.kind for a in found]
    assert DRIFT in kinds and SPIKE not in kinds and JUMP not in kinds
    assert found[0].timestamp_ms % 1_000_000 // 1000 > 300


def test_hard_limit_fires_even_during_warmup():
    found, _ = _run([70.0, 200.0, 70.5])
    assert [(a.kind, a.value, a.expected_low, a.expected_high) for a in found] == [(LIMIT, 200.0, -40.0, 150.0)]


def test_state_round_trips_through_its_item():
    from handler import items
    _, state = _run(_noise(100))
    restored = items.parse_state(items.state_item("press-001", state, 30))
    assert restored.sensors["temperature"].to_list() == state.sensors["temperature"].to_list()
    assert restored.last_timestamp_ms == state.last_timestamp_ms
