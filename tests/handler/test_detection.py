"""The detector on small real-shaped series: each kind opens one episode where it should, none on
normal behaviour (noise, cycles, quantised or constant sensors), and the result does not depend on
where the state was saved and restored."""

import json
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.detection import (DEVICE_SCOPE, DRIFT, KINDS, LEVEL_NOISE_SHARE, LEVEL_SHIFT, LIMIT, MAX_EPISODE_MS,
                               MULTIVARIATE, SENSOR_FIELDS, SPIKE, STUCK, VARIANCE, Detector, DeviceModel)
from handler.detector_settings import DetectorSettings

LIMITS = {"temperature": (-40.0, 150.0)}
START_MS = 1_800_000_000_000
STEP_MS = 1000
SETTINGS = DetectorSettings()
WARMUP = SETTINGS.warmupReadings


def _series(n, seed=1, level=70.0, sigma=0.5, cycle=0.0, period=600, digits=None):
    """A sensor as plants have them: a level, a slow cycle, noise, optionally quantised."""
    rng = random.Random(seed)
    values = []
    for i in range(n):
        value = level + cycle * math.sin(2 * math.pi * i / period) + rng.gauss(0, sigma)
        values.append(round(value, digits) if digits is not None else value)
    return values


def _rows(**columns):
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def _run(rows, detector=None, model=None, start=0):
    detector = detector or Detector(LIMITS, SETTINGS)
    model = model or detector.new_model()
    changes = []
    for i, values in enumerate(rows, start):
        changes.extend(detector.observe(model, START_MS + i * STEP_MS, values))
    return _final(changes), model


def _final(changes):
    """The last version of every episode, in start order."""
    episodes = {}
    for episode in changes:
        episodes[(episode.scope, episode.started_at)] = episode
    return sorted(episodes.values(), key=lambda e: (e.started_at, e.scope))


def _index(ms):
    return None if ms is None else (ms - START_MS) // STEP_MS


def _summary(episodes):
    return [(e.scope, e.kind, _index(e.started_at), _index(e.ended_at)) for e in episodes]


def test_normal_operation_opens_nothing():
    # Cycles within the warm-up (one longer than it is learned only as it goes: docs/processor.md).
    rows = _rows(temperature=_series(3000, seed=1, cycle=2.0, period=250),
                 current=_series(3000, seed=2, level=1.3, sigma=0.05, cycle=0.1, period=350),
                 flow_rate=[32.0 if (i // 150) % 3 else 31.0 for i in range(3000)],  # long constant stretches
                 thermocouple=_series(3000, seed=3, level=26.0, sigma=0.02, cycle=0.3, period=300, digits=1))
    episodes, model = _run(rows)
    assert _summary(episodes) == []
    assert model.open_episodes == {}


def test_a_single_outlier_is_one_closed_spike_episode():
    values = _series(600)
    values[400] = 85.0
    episodes, model = _run(_rows(temperature=values))
    assert _summary(episodes) == [("temperature", SPIKE, 400, 400)]
    assert episodes[0].readings == 1 and episodes[0].sensors == ("temperature",)
    assert episodes[0].peak_score > 1.0
    assert model.open_episodes == {}


def test_a_level_shift_is_one_level_shift_episode_from_its_first_reading():
    values = _series(400) + [v + 8.0 for v in _series(300, seed=2)]
    episodes, model = _run(_rows(temperature=values))
    assert _summary(episodes) == [("temperature", LEVEL_SHIFT, 400, None)], "the spike it began as is replaced"
    assert model.open_episodes["temperature"].readings == 300


def test_a_shift_that_goes_back_closes_at_its_last_abnormal_reading():
    values = _series(400) + [v + 8.0 for v in _series(100, seed=2)] + _series(200, seed=3)
    episodes, _ = _run(_rows(temperature=values))
    [(scope, kind, start, end)] = _summary(episodes)
    assert (scope, kind, start) == ("temperature", LEVEL_SHIFT, 400)
    assert 499 <= end <= 540, "ends when the level is back, not a settle time later"


def test_a_long_anomaly_that_goes_back_ends_there_though_the_baseline_learned_from_it():
    # Half an hour 20 spreads off: the baseline, learning slowly meanwhile, moves about 3 spreads
    # towards it; back at the old level, that is the anomaly over, not a new one.
    values = _series(800) + [v + 10.0 for v in _series(1800, seed=2)] + _series(600, seed=3)
    episodes, model = _run(_rows(temperature=values))
    [(scope, kind, start, end)] = _summary(episodes)
    assert (scope, kind, start) == ("temperature", LEVEL_SHIFT, 800)
    assert end is not None and 2599 <= end <= 2640, "closed where the level came back"
    assert not model.open_episodes


def _with_regular_outliers(values, every, height):
    """A reading `height` above the level every `every` readings (a CPU at 100 % once an hour)."""
    return [value + height if i % every == 0 else value for i, value in enumerate(values)]


def test_a_short_burst_no_farther_than_the_sensors_regular_outliers_is_no_level_shift():
    burst_at = 1215
    plain = _series(1500, seed=5)
    spiky = _with_regular_outliers(plain, every=30, height=20.0)  # 40 sigmas, 3 % of readings
    found = {}
    for name, values in (("plain", plain), ("spiky", spiky)):
        values = list(values)
        values[burst_at] += 20.0
        values[burst_at + 1] += 20.0
        episodes, model = _run(_rows(temperature=values))
        found[name] = _summary(episodes)
        found[name + " outliers"] = model.sensors["temperature"][SENSOR_FIELDS.index("outliers")]
    assert found["plain"] == [("temperature", LEVEL_SHIFT, burst_at, burst_at + 3)]
    assert found["spiky"] == [], "two readings as far as its normal single outliers are no new level"
    # The tracked 99th percentile of the distance from the level, in (estimated) spreads: about 2.6
    # for normal noise; for the spiky sensor as far as its outliers reach.
    assert 2.0 < found["plain outliers"] < 4.0
    assert found["spiky outliers"] > SETTINGS.spikeZ


def test_a_slow_ramp_is_drift():
    values = [v + max(0, i - 400) * 0.01 for i, v in enumerate(_series(1200))]
    episodes, _ = _run(_rows(temperature=values))
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", DRIFT)]
    assert _index(episodes[0].started_at) > 400


def test_a_creep_is_a_drift_only_from_drift_z():
    # 7 spreads over 600 readings, then held: the slow baseline keeps the level deviation between
    # levelZ and driftZ, which real processes do all the time (docs/processor.md).
    values = [v + min(max(0, i - 400), 600) * 3.6 / 600 for i, v in enumerate(_series(1600))]
    episodes, _ = _run(_rows(temperature=values))
    assert _summary(episodes) == []
    at_level_z = Detector(LIMITS, SETTINGS._replace(driftZ=SETTINGS.levelZ))
    episodes, _ = _run(_rows(temperature=values), at_level_z)
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", DRIFT)], "a drift at levelZ itself"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_creep_the_spreads_keep_up_with_is_a_drift_of_the_long_memory(seed):
    # 14 noise spreads over 600 readings on a sensor with a slow cycle: the level's spread grows with
    # it on the way, so the level deviation stays under levelZ; against the readings' long memory
    # (LONG_MEMORY) it is a drift, which ends once that memory has learned the new level.
    creep_start, creep_readings = 1000, 600
    normal = _series(2400, seed=seed, cycle=1.0, period=3600)
    values = [v + min(max(0, i - creep_start), creep_readings) * 7.0 / creep_readings for i, v in enumerate(normal)]
    detector, fields = Detector(LIMITS, SETTINGS), SENSOR_FIELDS
    model, changes, level_z_at_opening = detector.new_model(), [], None
    for i, value in enumerate(values):
        found = detector.observe(model, START_MS + i * STEP_MS, {"temperature": value})
        if found and level_z_at_opening is None:
            sensor = model.sensors["temperature"]
            spread = max(sensor[fields.index("var_d")], LEVEL_NOISE_SHARE**2 * sensor[fields.index("var_r")]) ** 0.5
            level_z_at_opening = (sensor[fields.index("level")] - sensor[fields.index("baseline")]) / spread
        changes.extend(found)
    episodes = _final(changes)
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", DRIFT)]
    assert creep_start < _index(episodes[0].started_at) < creep_start + creep_readings
    assert level_z_at_opening < SETTINGS.levelZ, "the level's own spread had kept up with the creep"
    assert episodes[0].ended_at is not None, "the long memory learns the new level"
    assert _run(_rows(temperature=normal))[0] == [], "the same sensor without the creep"


def test_a_step_on_a_noisy_sensor_is_a_level_shift_though_no_reading_is_an_outlier():
    # 4 spreads up: no reading reaches spikeZ, so no outlier confirms the new level; the level follows
    # within a few of its time constants, far faster than its trend: abrupt.
    values = _series(400, sigma=2.0) + [v + 8.0 for v in _series(300, seed=2, sigma=2.0)]
    episodes, model = _run(_rows(temperature=values))
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", LEVEL_SHIFT)]
    assert 400 <= _index(episodes[0].started_at) <= 400 + 2 / SETTINGS.levelAlpha
    assert model.sensors["temperature"][SENSOR_FIELDS.index("jumped_at")] == -1, "no outlier confirmed it"


def test_noisier_readings_at_the_same_level_are_a_variance_change():
    values = _series(500) + _series(300, seed=2, sigma=3.0)
    episodes, _ = _run(_rows(temperature=values))
    assert {e.kind for e in episodes} <= {VARIANCE, SPIKE} and VARIANCE in {e.kind for e in episodes}
    assert all(_index(e.started_at) >= 500 for e in episodes)


def test_a_ramp_with_the_same_noise_is_no_variance_change():
    # 0.4 noise spreads a reading for 100 readings, as SKAB's motor temperature falls in normal
    # operation, on a sensor with a slow cycle: the lagging level biases every innovation by about
    # 8 spreads, but their spread about that bias is the sensor's usual one. A level change.
    values = [v + min(max(0, i - 700), 100) * 0.2 for i, v in enumerate(_series(1100, seed=6, cycle=1.0, period=300))]
    episodes, _ = _run(_rows(temperature=values))
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", LEVEL_SHIFT)]
    assert 700 < _index(episodes[0].started_at) <= 800


def test_a_stuck_sensor_is_stuck_but_a_quantised_or_constant_one_is_not():
    noisy = _series(900, seed=4)
    noisy[500:700] = [noisy[499]] * 200
    rows = _rows(temperature=noisy,
                 thermocouple=_series(900, seed=5, level=26.0, sigma=0.01, cycle=0.3, period=300, digits=1),
                 flow_rate=[32.0] * 900)
    episodes, _ = _run(rows)
    episodes = [e for e in episodes if e.scope != DEVICE_SCOPE]  # the joint model may see it too
    assert [(e.scope, e.kind) for e in episodes] == [("temperature", STUCK)]
    # Its level, held off the baseline, may show first; it ends once the level is back.
    assert 500 < _index(episodes[0].started_at) <= 540 and 699 <= _index(episodes[0].ended_at) <= 740


def test_a_broken_correlation_is_multivariate_naming_the_sensors():
    # Two sensors following one slowly varying load, as a pump's current and flow do.
    rng = random.Random(9)
    common = [math.sin(2 * math.pi * i / 180) for i in range(900)]
    a = [10.0 + c + rng.gauss(0, 0.1) for c in common]
    b = [50.0 + 2 * c + rng.gauss(0, 0.2) for c in common]
    for i in range(600, 700):  # each stays within its usual range; together they disagree
        b[i] = 50.0 - 2 * common[i] + rng.gauss(0, 0.2)
    episodes, _ = _run(_rows(a=a, b=b))
    joint = [e for e in episodes if e.scope == DEVICE_SCOPE]
    assert joint and all(e.kind == MULTIVARIATE for e in joint)
    assert all(600 <= _index(e.started_at) < 700 for e in joint)
    assert set().union(*(e.sensors for e in joint)) <= {"a", "b"}


def test_a_hard_limit_opens_an_episode_even_during_warmup():
    episodes, _ = _run(_rows(temperature=[70.0, 200.0] + [70.5] * 5))
    assert [(e.kind, _index(e.started_at), e.ended_at) for e in episodes] == [(LIMIT, 1, None)]
    assert episodes[0].peak_score == pytest.approx(1.0 + 50.0 / 190.0)


def test_short_normal_gaps_are_bridged_and_long_ones_split():
    values = _series(600)
    for i in (400, 410, 420):   # gaps shorter than settleReadings
        values[i] = 90.0
    values[500] = 90.0          # after a gap longer than it
    episodes, _ = _run(_rows(temperature=values))
    assert [(_index(e.started_at), _index(e.ended_at), e.readings) for e in episodes] == [
        (400, 420, 21), (500, 500, 1)]


def test_settling_needs_both_readings_and_milliseconds():
    detector, model = Detector(LIMITS, SETTINGS), None
    values = _series(400)
    episodes, model = _run(_rows(temperature=values + [90.0]), detector)
    t = START_MS + 400 * STEP_MS
    # Many normal readings within a few milliseconds: not yet settled (settleMs).
    calm = _series(SETTINGS.settleReadings + 5, seed=8)
    for k, value in enumerate(calm[:-1], 1):
        assert detector.observe(model, t + k, {"temperature": value}) == []
    assert "temperature" in model.open_episodes
    [closed] = detector.observe(model, t + SETTINGS.settleMs, {"temperature": calm[-1]})
    assert (closed.ended_at, closed.readings) == (t, 1) and model.open_episodes == {}


def test_an_episode_longer_than_the_bound_is_closed_and_continued():
    detector = Detector(LIMITS, SETTINGS)
    model = detector.new_model()
    hour = 3_600_000
    changes = []
    for k in range(30):  # one out-of-limit reading an hour for 30 hours
        changes.extend(detector.observe(model, START_MS + k * hour, {"temperature": 500.0}))
    episodes = _final(changes)
    assert [(e.started_at - START_MS, e.ended_at and e.ended_at - START_MS, e.continued) for e in episodes] == [
        (0, 23 * hour, False), (24 * hour, None, True)]
    assert all((e.ended_at or e.last_abnormal_at) - e.started_at < MAX_EPISODE_MS for e in episodes)


def test_readings_must_be_newer_than_the_model():
    detector = Detector(LIMITS, SETTINGS)
    model = detector.new_model()
    detector.observe(model, START_MS, {"temperature": 70.0})
    with pytest.raises(ValueError, match="not newer"):
        detector.observe(model, START_MS, {"temperature": 70.0})


def test_state_is_small_json_and_round_trips_exactly():
    rng = random.Random(3)
    names = [f"s{i:02d}" for i in range(32)]
    rows = [{name: rng.gauss(i, 1 + i) for i, name in enumerate(names)} for _ in range(WARMUP + 20)]
    rows[-5]["s00"] = 1e6
    _, model = _run(rows)
    text = json.dumps(model.to_state(), allow_nan=False)
    assert len(text) < 10_000  # about 300 bytes a sensor
    assert json.dumps(DeviceModel.from_state(json.loads(text)).to_state(), allow_nan=False) == text
    assert "s00" in DeviceModel.from_state(json.loads(text)).open_episodes


def test_a_state_of_another_version_starts_afresh():
    assert DeviceModel.from_state({"v": 0}).to_state() == DeviceModel().to_state()


def test_an_episode_open_in_a_state_of_another_version_still_closes():
    detector = Detector(LIMITS, SETTINGS)
    _, model = _run(_rows(temperature=_series(400) + [500.0]), detector)
    old_state = dict(model.to_state(), v=1, s={"temperature": ["an older sensor format"]})
    upgraded = DeviceModel.from_state(old_state)
    assert upgraded.readings == 0 and upgraded.sensors == {} and list(upgraded.open_episodes) == ["temperature"]
    t = START_MS + 400 * STEP_MS
    changes = []
    for k, value in enumerate(_series(SETTINGS.settleReadings + 1, seed=8), 1):
        changes.extend(detector.observe(upgraded, t + max(k * STEP_MS, k * SETTINGS.settleMs), {"temperature": value}))
    assert [(e.scope, e.started_at, e.ended_at) for e in changes] == [("temperature", t, t)]
    assert upgraded.open_episodes == {}


# Every kind, on one device, for the batch-split property below.
def _every_kind_rows():
    n = 1500
    rng = random.Random(11)
    common = [rng.gauss(0, 1) for _ in range(n)]
    temperature = _series(n, seed=12, cycle=1.0)
    temperature[440] = 95.0                                           # spike
    temperature[900] = 400.0                                          # limit
    for i in range(500, 650):
        temperature[i] += 6.0                                         # level shift
    vibration = _series(n, seed=13, level=4.0, sigma=0.15)
    for i in range(700, 1100):
        vibration[i] += (i - 700) * 0.004                             # drift
    current = [1.3 + 0.1 * c + rng.gauss(0, 0.01) for c in common]
    voltage = [230.0 + 2.0 * c + rng.gauss(0, 0.2) for c in common]
    for i in range(1200, 1260):
        voltage[i] = 230.0 - 2.0 * common[i]                          # broken correlation
    current[1300:1380] = [current[1299]] * 80                         # stuck
    for i in range(1400, 1480):
        vibration[i] += rng.gauss(0, 1.5)                             # variance
    return _rows(temperature=temperature, vibration=vibration, current=current, voltage=voltage)


EVERY_KIND = _every_kind_rows()
UNINTERRUPTED_CHANGES = []
_detector = Detector(LIMITS, SETTINGS)
_model = _detector.new_model()
for _i, _values in enumerate(EVERY_KIND):
    UNINTERRUPTED_CHANGES.extend(_detector.observe(_model, START_MS + _i * STEP_MS, _values))
UNINTERRUPTED_STATE = json.dumps(_model.to_state(), allow_nan=False)


def test_the_fixture_shows_every_kind():
    assert {e.kind for e in UNINTERRUPTED_CHANGES} == set(KINDS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(EVERY_KIND) - 1), max_size=12, unique=True))
def test_batch_boundaries_change_nothing(boundaries):
    """State saved and restored through JSON at any boundaries: the same episodes and state, bit for bit."""
    detector = Detector(LIMITS, SETTINGS)
    state = None
    changes = []
    edges = [0] + sorted(boundaries) + [len(EVERY_KIND)]
    for first, end in zip(edges, edges[1:]):
        model = DeviceModel.from_state(json.loads(state)) if state is not None else detector.new_model()
        for i in range(first, end):
            changes.extend(detector.observe(model, START_MS + i * STEP_MS, EVERY_KIND[i]))
        state = json.dumps(model.to_state(), allow_nan=False)
    assert [e.to_list() for e in changes] == [e.to_list() for e in UNINTERRUPTED_CHANGES]
    assert state == UNINTERRUPTED_STATE


def test_integer_readings_give_the_same_result_across_a_saved_state():
    """JSON brings whole numbers as ints; restored from the state they are floats: same results."""
    values = [int(v * 10) for v in _series(WARMUP + 300, seed=21)]
    values[WARMUP + 50] = 1000
    rows = _rows(count=values, other=[v // 3 for v in values])
    whole, whole_model = _run(rows)
    detector = Detector(LIMITS, SETTINGS)
    half = WARMUP + 20
    first, model = _run(rows[:half], detector)
    restored = DeviceModel.from_state(json.loads(json.dumps(model.to_state())))
    second, model = _run(rows[half:], detector, restored, start=half)
    assert [e.to_list() for e in _final(first + second)] == [e.to_list() for e in whole] != []
    assert json.dumps(model.to_state()) == json.dumps(whole_model.to_state())


HALF_HOUR_MS = 1_800_000


def _weekly(weeks, seed, quiet_day=None):
    """Half-hourly traffic-like readings: busy weekday daytimes, calm nights and weekends, noise; and
    optionally one weekday (its index from the start) shaped like a Sunday and lower than any night
    (a storm): within the range of normal values seen over a week, far from that hour's."""
    rng = random.Random(seed)
    values = []
    for i in range(weeks * 7 * 48):
        day, hour = divmod(i, 48)
        weekday = day % 7 < 5
        level = 90.0 if day == quiet_day else 100.0
        busy = 40.0 if weekday and day != quiet_day else 10.0
        values.append(level + busy * math.sin(math.pi * hour / 48) ** 2 + rng.gauss(0, 1.0))
    return values


def _run_at(values, step_ms):
    detector = Detector({}, SETTINGS)
    model = detector.new_model()
    changes = []
    for i, value in enumerate(values):
        changes.extend(detector.observe(model, START_MS + i * step_ms, {"traffic": value}))
    return _final(changes), model


def test_a_weekly_pattern_is_learned_and_a_day_off_pattern_is_an_episode():
    # 8 weeks: warm-up (400 readings), two weeks of learning the profile, then scored against it.
    normal, model = _run_at(_weekly(8, seed=31), HALF_HOUR_MS)
    season = model.sensors["traffic"][SENSOR_FIELDS.index("season")]
    assert season and season[1] == 1, "the profile explains the pattern and is applied"
    late = [e for e in normal if e.started_at >= START_MS + 5 * 7 * 48 * HALF_HOUR_MS]
    assert late == [], "once applied, the usual week opens nothing"
    quiet_day = 6 * 7 + 2  # a Wednesday in week 7
    episodes, _ = _run_at(_weekly(8, seed=31, quiet_day=quiet_day), HALF_HOUR_MS)
    day_start, day_end = START_MS + quiet_day * 48 * HALF_HOUR_MS, START_MS + (quiet_day + 1) * 48 * HALF_HOUR_MS
    assert [e for e in episodes if e.started_at >= START_MS + 5 * 7 * 48 * HALF_HOUR_MS
            and day_start <= e.started_at < day_end], "the calm weekday is found"


def test_a_sensor_without_a_weekly_pattern_keeps_no_profile():
    rng = random.Random(4)
    _, model = _run_at([50.0 + rng.gauss(0, 1.0) for _ in range(5 * 7 * 48)], HALF_HOUR_MS)
    assert model.sensors["traffic"][SENSOR_FIELDS.index("season")] == ()
    assert len(json.dumps(model.to_state())) < 400


def test_a_weekly_profile_does_not_depend_on_where_the_state_was_saved():
    values = _weekly(7, seed=31, quiet_day=44)
    whole, whole_model = _run_at(values, HALF_HOUR_MS)
    detector = Detector({}, SETTINGS)
    state, changes = None, []
    edges = [0, 300, 700, 1072, 1073, 2130, len(values)]  # warming up, learning the profile, applying it
    for first, end in zip(edges, edges[1:]):
        model = DeviceModel.from_state(json.loads(state)) if state is not None else detector.new_model()
        for i in range(first, end):
            changes.extend(detector.observe(model, START_MS + i * HALF_HOUR_MS, {"traffic": values[i]}))
        state = json.dumps(model.to_state(), allow_nan=False)
    assert [e.to_list() for e in _final(changes)] == [e.to_list() for e in whole] != []
    assert state == json.dumps(whole_model.to_state(), allow_nan=False)
    assert whole_model.sensors["traffic"][SENSOR_FIELDS.index("season")][1] == 1


def test_a_stuck_sensor_is_stuck_though_its_weekly_profile_is_applied():
    values = _weekly(7, seed=31)
    values[2200:2280] = [values[2199]] * 80  # the raw value repeats; less its offset it would not
    episodes, model = _run_at(values, HALF_HOUR_MS)
    assert model.sensors["traffic"][SENSOR_FIELDS.index("season")][1] == 1
    # Stuck from the stuckReadings-th repetition; continued a day (48 readings) later (MAX_EPISODE_MS).
    stuck = [((e.started_at - START_MS) // HALF_HOUR_MS, e.continued) for e in episodes if e.kind == STUCK]
    assert stuck == [(2199 + SETTINGS.stuckReadings - 1, False), (2199 + SETTINGS.stuckReadings - 1 + 48, True)]


def test_the_joint_score_is_hotelling_t_squared_under_the_regularised_covariance():
    # Two sensors that move together (correlation 0.9): T-squared = u' (S + ridge * mean(diag S) * I)^-1 u.
    from handler.detection import JOINT_RIDGE, JointModel, _contributors, _joint_score

    joint = JointModel(("a", "b"), n=100, cov=[1.0, 0.9, 1.0])
    shift = JOINT_RIDGE * 1.0
    a, b, d = 1.0 + shift, 0.9, 1.0 + shift
    determinant = a * d - b * b
    for u in ([1.0, 1.0], [1.0, -1.0], [2.0, 0.0]):
        expected = (d * u[0] * u[0] - 2 * b * u[0] * u[1] + a * u[1] * u[1]) / determinant
        score, whitened = _joint_score(joint, u)
        assert math.isclose(sum(w * w for w in whitened), expected, rel_tol=1e-12)
        v = 2.0 / 18.0
        assert math.isclose(score, ((expected / 2) ** (1 / 3) - (1 - v)) / math.sqrt(v), rel_tol=1e-12)
    # Moving together is cheap, apart is dear; the sensor off the shared direction is named.
    assert _joint_score(joint, [1.0, -1.0])[0] > _joint_score(joint, [1.0, 1.0])[0]
    for u, named in (([0.5, 3.0], ("b",)), ([3.0, 0.5], ("a",)), ([2.0, -2.0], ("a", "b"))):
        assert _contributors(joint, u, _joint_score(joint, u)[1]) == named
