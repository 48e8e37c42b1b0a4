"""Anomaly detection per device: readings in time order in, anomaly episodes out.

Pure standard library. Per device the detector keeps a `DeviceModel` (a few
floats per sensor, one small joint model, the open episodes), serialised as
JSON between batches. Everything is deterministic: the same readings from the
same state give the same episodes and the same state, bit for bit, however the
readings were split into batches (floats survive JSON exactly; nothing is
rounded on the way out that the uninterrupted run did not round too).

Per sensor (scores in units of the sensor's own normal behaviour, so volts next
to g need no per-sensor threshold):

- a short-term level L (EWMA, `levelAlpha`) and a slow baseline B (`baselineAlpha`,
  learned evenly over the first `warmupReadings`, then exponentially);
- the innovation r = x - L (the reading against the short-term level) and its
  normal spread: |r| beyond `spikeZ` spreads is a **spike** (a threshold
  widened for a sensor whose normal readings have heavy tails);
- the level deviation d = L - B and its normal spread: beyond `levelZ` is a
  **level_shift** when the level jumped there (two outliers in a row on one
  side move L at once) within two level time constants, or moved there so fast
  that its trend (L smoothed over two time constants) is half the deviation
  behind it; a **drift** when it crept there, reported only beyond `driftZ`
  (higher than `levelZ` by default: real processes creep within their normal
  wander far more often than they jump), and also when the level is `driftZ`
  spreads of the readings' long memory (their mean and variance over about
  2,000 readings, `LONG_MEMORY`) from its mean, so a creep slow enough for the
  spreads to keep up with it on the way is still found; an outlier confirms a level only
  beyond `OUTLIER_MARGIN` times the 99th percentile of the sensor's own
  distances from L (tracked per sensor), so on a sensor whose normal single
  outliers reach far, a short burst as far is no new level;
- the short-term variance of r about its short-term mean against its normal
  variance: beyond `varianceRatio` is a **variance** change; while the level
  ramps, r is biased (the level lags), and a ramp so fast that the bias alone
  passes `varianceRatio` is a **level_shift** under way (a rate-of-change
  alarm), not a variance change;
- the run of identical values: a run of at least `stuckReadings` and
  `stuckFactor` times the longest run seen in normal operation is **stuck**, on
  a sensor that normally changes on almost every reading, so a quantised or
  constant sensor (a flow reported in whole l/min, a temperature to 0.1
  degrees) that repeats values normally does not fire;
- hard limits per sensor type: **limit**, from the first reading;
- a weekly profile (SEASON_*): once a device has been seen for a day, each
  learned sensor learns its mean offset from B by time of the week (84 bins of
  two hours); after two weeks it is applied if it explains at least half of the
  sensor's variance (every test above then reads x less its offset: a weekday
  rush hour is no level shift, a weekday as calm as a Sunday is one), and
  dropped otherwise, so a sensor without such a pattern carries no profile.

Per device, a joint model of the readings' standardised deviations from their
baselines (their covariance, so sensors that normally move together do not
alarm when they do): the Hotelling T-squared of the current deviations, as a
standard normal score (Wilson-Hilferty), beyond `jointZ` is **multivariate**,
with the sensors that contribute most; reported only when not every sensor it
names is already in an episode of its own. T-squared comes from a Cholesky
factor of the covariance (computed once per update, derived from the stored
covariance, so a restored state scores as the uninterrupted run does): one
forward substitution a reading.

The baselines learn from normal readings: while a sensor is abnormal (by its
own tests or named by the joint model) its baseline and spreads move at a tenth
of their rate (`ABSORB_FACTOR`), so a long anomaly is not learned as normal
within its first hours, while a real change of operating point is accepted
eventually (and reported as one episode until then). What it learned meanwhile
is undone when the level comes back within `levelZ` of the baseline it had at
its last normal reading (`reference`): that is the anomaly over, not a new one.

The hot loop (`Detector._sensors`) keeps each sensor's model as one flat tuple
(SENSOR_FIELDS), unpacked into locals and rebuilt once a reading, and scores
and learns in one pass; a sensor the joint model then names learns that reading
again, from its model before it, as an abnormal one.

Episodes: a scope (a sensor, or the device for the joint model) opens an
episode at its first abnormal reading; it stays open while abnormal and closes
once the scope has been normal for both `settleReadings` readings and `settleMs`
milliseconds of device time since the last abnormal reading (readings bridge
short normal gaps at any sampling rate; milliseconds keep a fast device from
closing on a moment's calm). `ended_at` is then the last abnormal reading, so a
closed episode covers exactly its abnormal stretch and the normal gaps inside.
An episode longer than MAX_EPISODE_MS is closed at its last abnormal reading
and a continuation opened, so a query for the episodes overlapping a time range
need look back at most MAX_EPISODE_MS before the range.

Kind rule: an episode's kind is the strongest kind seen while it was open, in
the order of KIND_STRENGTH; of equally strong kinds, the first seen stays. So a
spike that turns out to be the first reading of a level shift becomes a
level_shift, and a limit violation inside any episode makes it a limit episode.

Scores are in multiples of the threshold of the test that fired (1.0 = just
at it; a drift's is `driftZ`, of the level's spreads or of the long memory's;
a ramp's level_shift is the innovations' mean square over `varianceRatio`
times their normal variance), so `peak_score` compares across kinds: limit 1
+ distance outside the limits in spans, stuck the run length over the stuck
threshold.
"""

from __future__ import annotations

import base64
import math
import struct
from array import array
from operator import mul

from handler import layout
from handler.detector_settings import DetectorSettings

DEVICE_SCOPE = "device"

# The kinds are part of the stores' contract (handler/layout.py), which the program reads.
KINDS = LIMIT, SPIKE, LEVEL_SHIFT, VARIANCE, DRIFT, STUCK, MULTIVARIATE = layout.ANOMALY_KINDS
# Which kind replaces which in an open episode (higher replaces lower).
# A variance change outranks level changes: noisier readings also move the level by chance,
# while a level shift alone raises the short-term variance too briefly to be one.
KIND_STRENGTH = {SPIKE: 0, DRIFT: 1, LEVEL_SHIFT: 2, VARIANCE: 3, MULTIVARIATE: 3, STUCK: 4, LIMIT: 5}

# One day: an episode is closed and continued after that, bounding how far
# before a time range a query must look for episodes overlapping it.
MAX_EPISODE_MS = layout.MAX_EPISODE_MS
# A device's sensor names are not fixed by the format: keep the models of at
# most this many (the format allows 32 per reading), dropping the one seen least recently.
MAX_TRACKED_SENSORS = 64
# While a device is abnormal its baselines learn at this fraction of their rate.
ABSORB_FACTOR = 0.1
# How far one reading can pull the short-term level and variance, in spreads.
CLIP_SPREADS = 4.0
# Heavy tails: normal noise has about this share of readings beyond
# CLIP_SPREADS spreads as estimated here (the clipped estimate is about 12 %
# below a normal distribution's deviation, so 4 estimated spreads are 3.5
# true ones); a sensor with more has its spike threshold widened by
# TAIL_WIDENING times the decades of excess (recurrent outliers are its normal).
GAUSSIAN_TAIL = 5e-4
TAIL_WIDENING = 0.5
# Residuals beyond this many spreads update the spreads as if they were at it
# (Huber-style): heavy tails do not inflate them, and a slow drift cannot grow
# them faster than a factor 1 + baselineAlpha * (SPREAD_CLIP**2 - 1) a reading.
SPREAD_CLIP = 2.0
# After the warm-up, spreads learn at this share of baselineAlpha. Measured:
# slower (0.25) catches slow synthetic drifts sooner but raises SKAB's false
# alarm rate from 18 % to 29 % (valve1) and lowers NAB's mean F1: real wander
# needs spreads that keep up with it.
SPREAD_RATE = 1.0
# The level deviation's spread is floored at this share of the reading-to-reading spread.
LEVEL_NOISE_SHARE = 0.5
# The long memory: the mean and variance of the readings themselves, learned this many times slower
# than the baseline (2,000 readings at the defaults). The spreads above keep up with slow wander, so a
# creep they absorb on the way is still a drift once the level is driftZ of the long memory's spreads
# from its mean: the test of a windowed Gaussian over a few thousand readings. It learns from every
# reading at that one rate, abnormal or not, so a drift it reports cannot hold itself open. Measured
# (SKAB's anomaly-free run, 9,400 readings of a process that moves slowly on its own): 4 keeps 1.9 % of
# its rows in episodes as without it; 6 gives 6.9 %, 8 gives 33.9 %.
LONG_MEMORY = 4.0
# Only a sensor that normally changes on at least this share of its readings
# can be stuck: one that changes rarely (a slow temperature to 0.1 degrees, a
# quantised flow) repeats values in normal operation.
STUCK_CHANGE_RATE = 0.9
# A level change found within this many level time constants (1 / levelAlpha
# readings) of the level jumping to confirmed outliers is abrupt: a level shift.
# Otherwise the level crept there: drift.
ABRUPT_TIME_CONSTANTS = 2.0
# ... or if the level's trend (its EWMA over that many time constants) is this share of the deviation behind it.
ABRUPT_SHARE = 0.5
# Spreads are floored: relative to the level, and to a share of the sensor's
# typical non-zero step, so a quiet or quantised sensor (a flow in whole l/min
# that mostly repeats) does not turn one step into an anomaly.
STEP_FLOOR = 0.5
RELATIVE_SPREAD_FLOOR = 1e-6
ABSOLUTE_SPREAD_FLOOR = 1e-9
# Joint model: ridge added to the deviations' covariance (relative to its mean
# variance: sensors that always move together still leave a direction of small
# variance, not none), and every how many normal readings it learns once
# (it is factored after each update; learning from every reading would cost
# n^3 per reading for a slow baseline that gains nothing from it).
JOINT_RIDGE = 0.01
JOINT_LEARN_EVERY = 8
# ... and only from readings scoring below this share of jointZ.
JOINT_LEARN_BELOW = 0.5
# Sensors named on a joint episode: the largest contributions to T-squared
# that together make up this share of it (at most JOINT_MAX_NAMED).
JOINT_NAMED_SHARE = 0.7
JOINT_MAX_NAMED = 4

# Heavy tails, by magnitude: each sensor tracks the OUTLIER_QUANTILE of its readings' distance from the
# short-term level, in spreads (at OUTLIER_RATE). Two outliers in a row confirm a new level only beyond
# OUTLIER_MARGIN times it (and beyond spikeZ): on a sensor whose normal single outliers reach far
# (a CPU at 100 % every hour), a short burst as far is no new level.
OUTLIER_QUANTILE = 0.99
OUTLIER_RATE = 0.05
OUTLIER_MARGIN = 1.2
_OUTLIER_UP = 1.0 + OUTLIER_RATE * OUTLIER_QUANTILE
_OUTLIER_DOWN = 1.0 - OUTLIER_RATE * (1.0 - OUTLIER_QUANTILE)
_OUTLIER_UP_ABSORBING = 1.0 + ABSORB_FACTOR * OUTLIER_RATE * OUTLIER_QUANTILE
_OUTLIER_DOWN_ABSORBING = 1.0 - ABSORB_FACTOR * OUTLIER_RATE * (1.0 - OUTLIER_QUANTILE)

# The same products as the hot loop's expressions would compute, once.
_CLIP_SPREADS_SQUARED = CLIP_SPREADS * CLIP_SPREADS
_SPREAD_CLIP_SQUARED = SPREAD_CLIP * SPREAD_CLIP
_LEVEL_NOISE_SHARE_SQUARED = LEVEL_NOISE_SHARE * LEVEL_NOISE_SHARE
_NOBODY: frozenset[str] = frozenset()

# Weekly pattern (traffic, shifts, weekends): once a device has been seen for SEASON_START_MS, each
# sensor learns a profile of its offset from the baseline by time of the week, in SEASON_BINS bins.
# After SEASON_LEARN_PERIODS weeks it is applied if it explains at least SEASON_EXPLAINED of the
# sensor's variance (its tests then read each reading less its offset), and dropped otherwise.
SEASON_PERIOD_MS = 7 * 86_400_000
SEASON_BINS = 84  # two hours each
SEASON_START_MS = 86_400_000
SEASON_LEARN_PERIODS = 2
SEASON_MEMORY_PERIODS = 4.0
SEASON_EXPLAINED = 0.5
_SEASON_BIN_MS = SEASON_PERIOD_MS / SEASON_BINS
_SEASON_BINS_PER_MS = SEASON_BINS / SEASON_PERIOD_MS
_NO_OFFSETS = [0.0] * SEASON_BINS
_F32 = struct.Struct("<f")


# Single precision, as the state stores the joint covariance and the weekly profiles.
def _f32(value: float) -> float:
    """The value rounded to single precision."""
    return float(_F32.unpack(_F32.pack(value))[0])


def _pack_f32(values: list[float]) -> str:
    return base64.b64encode(array("f", values).tobytes()).decode("ascii")


def _unpack_f32(text: str) -> list[float]:
    values = array("f")
    values.frombytes(base64.b64decode(text))
    return values.tolist()


STATE_VERSION = 6
_SENSOR_FLOATS = struct.Struct("<14d")
_REFERENCE_FLOAT = struct.Struct("<d")


class Episode:
    """One anomaly episode of one device, for one scope (a sensor, or DEVICE_SCOPE)."""

    __slots__ = ("scope", "kind", "sensors", "started_at", "ended_at", "last_abnormal_at", "peak_score",
                 "readings", "seen", "continued")

    def __init__(self, scope: str, kind: str, sensors: tuple[str, ...], started_at: int,
                 ended_at: int | None = None, last_abnormal_at: int | None = None, peak_score: float = 0.0,
                 readings: int = 1, seen: int = 1, continued: bool = False) -> None:
        self.scope = scope
        self.kind = kind
        self.sensors = sensors
        self.started_at = started_at
        self.ended_at = ended_at
        self.last_abnormal_at = started_at if last_abnormal_at is None else last_abnormal_at
        self.peak_score = peak_score
        self.readings = readings
        # Device readings seen since started_at (readings is this at the last abnormal one).
        self.seen = seen
        # Whether this episode continues one closed at MAX_EPISODE_MS.
        self.continued = continued

    def to_list(self) -> list:
        return [self.scope, self.kind, list(self.sensors), self.started_at, self.ended_at, self.last_abnormal_at,
                self.peak_score, self.readings, self.seen, int(self.continued)]

    @classmethod
    def from_list(cls, values: list) -> "Episode":
        scope, kind, sensors, started_at, ended_at, last_abnormal_at, peak, readings, seen, continued = values
        return cls(scope, kind, tuple(sensors), started_at, ended_at, last_abnormal_at, float(peak), readings,
                   seen, bool(continued))

    def copy(self) -> "Episode":
        return Episode(self.scope, self.kind, self.sensors, self.started_at, self.ended_at, self.last_abnormal_at,
                       self.peak_score, self.readings, self.seen, self.continued)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Episode) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return (f"Episode({self.scope!r}, {self.kind!r}, sensors={self.sensors}, {self.started_at}..{self.ended_at}, "
                f"last_abnormal_at={self.last_abnormal_at}, peak={self.peak_score:.3g}, readings={self.readings})")


# One sensor's learned normal behaviour (see the module docstring), as one flat tuple: the hot loop
# unpacks it into locals and builds the next one, which is far cheaper than attribute updates.
SENSOR_FIELDS = (
    "n",            # readings learned
    "level",        # short-term level L
    "trend",        # the level smoothed over ABRUPT_TIME_CONSTANTS of its time constants: how fast it moves
    "baseline",     # slow baseline B
    "var_r",        # normal variance of the innovation x - L
    "var_d",        # normal mean square of the level deviation L - B
    "long_mean",    # mean of the readings over the long memory (LONG_MEMORY)
    "long_var",     # their variance over it
    "fast_r2",      # short-term mean square of the innovation
    "fast_r",       # its short-term mean (the variance test reads the spread about it)
    "last",         # last value
    "run",          # identical values in a row before the current one
    "longest_run",  # longest such run seen in normal operation
    "step",         # typical size of a non-zero step between consecutive values
    "change_rate",  # share of normal readings that differ from the one before
    "tail",         # share of readings beyond CLIP_SPREADS spreads (heavy tails)
    "outliers",     # OUTLIER_QUANTILE of |x - L| in spreads: how far this sensor's normal outliers reach
    "jumped_at",    # n when the level last jumped to confirmed outliers (-1: never)
    "outside",      # side (1, -1) of the last reading if it was an outlier (see OUTLIER_MARGIN), else 0
    "reference",    # the baseline at the last normal reading (what the sensor returns to after an episode)
    "season",       # weekly profile: None (not yet), () (none: no weekly pattern), or
                    # (since ms, applied, variance it leaves, offsets by bin)
    "last_seen",    # device time of its last reading (for eviction)
)
SensorState = tuple
LAST_SEEN = SENSOR_FIELDS.index("last_seen")


def new_sensor(x: float) -> SensorState:
    """The model of a sensor first seen with value x (nothing learned yet)."""
    return (0, x, x, x, 0.0, 0.0, x, 0.0, 0.0, 0.0, x, 0, 0, 0.0, 0.0, 0.0, CLIP_SPREADS, -1, 0, x, None, 0)


def sensor_to_list(sensor: SensorState) -> list:
    (n, level, trend, baseline, var_r, var_d, long_mean, long_var, fast_r2, fast_r, last, run, longest_run, step,
     change_rate, tail, outliers, jumped_at, outside, reference, season, last_seen) = sensor
    # Floats as their exact 8 bytes, base64: about half the size of their JSON text. The reference
    # is stored only while it differs from the baseline (in or just after an episode).
    floats = _SENSOR_FLOATS.pack(level, trend, baseline, var_r, var_d, long_mean, long_var, fast_r2, fast_r, last,
                                 step, change_rate, tail, outliers)
    if reference != baseline:
        floats += _REFERENCE_FLOAT.pack(reference)
    stored_season = season if not season else [season[0], season[1], season[2], _pack_f32(season[3])]
    return [n, run, longest_run, jumped_at, outside, last_seen, base64.b64encode(floats).decode("ascii"),
            stored_season]


def sensor_from_list(values: list) -> SensorState:
    n, run, longest_run, jumped_at, outside, last_seen, packed, stored_season = values
    floats = base64.b64decode(packed)
    (level, trend, baseline, var_r, var_d, long_mean, long_var, fast_r2, fast_r, last, step, change_rate, tail,
     outliers) = _SENSOR_FLOATS.unpack_from(floats)
    reference = (_REFERENCE_FLOAT.unpack_from(floats, _SENSOR_FLOATS.size)[0] if len(floats) > _SENSOR_FLOATS.size
                 else baseline)
    season = (stored_season if stored_season is None else
              () if not stored_season else (stored_season[0], stored_season[1], stored_season[2],
                                            _unpack_f32(stored_season[3])))
    return (n, level, trend, baseline, var_r, var_d, long_mean, long_var, fast_r2, fast_r, last, run, longest_run,
            step, change_rate, tail, outliers, jumped_at, outside, reference, season, last_seen)


class JointModel:
    """Covariance of a fixed set of sensors' standardised level deviations."""

    __slots__ = ("sensors", "names", "n", "cov", "_factor")

    def __init__(self, sensors: tuple[str, ...], n: int = 0, cov: list[float] | None = None) -> None:
        self.sensors = sensors
        self.names = frozenset(sensors)
        self.n = n  # updates learned
        size = len(sensors)
        # Lower triangle, row by row: cov[i * (i + 1) // 2 + j] for j <= i.
        self.cov = cov if cov is not None else [0.0] * (size * (size + 1) // 2)
        self._factor: tuple[list[list[float]], list[float]] | None = None  # derived, never stored

    def learn(self, u: list[float], alpha: float) -> None:
        n = self.n = self.n + 1
        a = alpha if alpha * n > 1.0 else 1.0 / n
        keep = 1.0 - a
        cov = self.cov
        k = 0
        for i, ui in enumerate(u):
            aui = a * ui
            for j in range(i + 1):
                cov[k] = keep * cov[k] + aui * u[j]
                k += 1
        # Kept in single precision (the state stores 4 bytes an entry: 2 KB for 32 sensors), rounded
        # here, so an uninterrupted run and one restored from the state hold the same numbers.
        self.cov = array("f", cov).tolist()
        self._factor = None

    def packed(self) -> str:
        return _pack_f32(self.cov)

    @staticmethod
    def unpack(text: str) -> list[float]:
        return _unpack_f32(text)

    def factor(self) -> tuple[list[list[float]], list[float]]:
        """The Cholesky factor of the regularised covariance (see _cholesky), computed once per update."""
        if self._factor is None:
            self._factor = _cholesky(self.cov, len(self.sensors), JOINT_RIDGE)
        return self._factor


class DeviceModel:
    """Everything the detector remembers of one device between batches."""

    __slots__ = ("last_timestamp_ms", "readings", "sensors", "joint", "open_episodes", "first_timestamp_ms")

    def __init__(self, last_timestamp_ms: int = 0, readings: int = 0, sensors: dict[str, SensorState] | None = None,
                 joint: JointModel | None = None, open_episodes: dict[str, Episode] | None = None,
                 first_timestamp_ms: int = 0) -> None:
        self.last_timestamp_ms = last_timestamp_ms    # device time of the newest reading observed
        self.first_timestamp_ms = first_timestamp_ms  # device time of the first reading observed
        self.readings = readings                    # readings observed
        self.sensors = sensors if sensors is not None else {}
        self.joint = joint
        self.open_episodes = open_episodes if open_episodes is not None else {}

    def to_state(self) -> dict:
        """A JSON-serialisable copy (json.dumps(..., allow_nan=False) works; floats round-trip exactly)."""
        joint = self.joint
        return {
            "v": STATE_VERSION,
            "t": self.last_timestamp_ms,
            "f": self.first_timestamp_ms,
            "n": self.readings,
            "s": {name: sensor_to_list(sensor) for name, sensor in sorted(self.sensors.items())},
            "j": [list(joint.sensors), joint.n, joint.packed()] if joint is not None else None,
            "e": [episode.to_list() for _, episode in sorted(self.open_episodes.items())],
        }

    @classmethod
    def from_state(cls, state: object) -> "DeviceModel":
        if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
            # A state of another version (or none) starts the device's model afresh: it is relearned
            # within warmupReadings, which is safer than misreading numbers. Its open episodes carry
            # over (their list is the same in every version so far), so they still close once the
            # device has settled and their items do not stay open after an upgrade.
            fresh = cls()
            if isinstance(state, dict):
                fresh.open_episodes = {episode.scope: episode for episode in map(Episode.from_list, state.get("e", ()))}
            return fresh
        joint_raw = state["j"]
        joint = (JointModel(tuple(joint_raw[0]), joint_raw[1], JointModel.unpack(joint_raw[2]))
                 if joint_raw is not None else None)
        episodes = [Episode.from_list(values) for values in state["e"]]
        return cls(state["t"], state["n"], {name: sensor_from_list(values) for name, values in state["s"].items()},
                   joint, {episode.scope: episode for episode in episodes}, state["f"])


class Detector:
    """Applies one stack's limits and detector settings to each device's readings, in time order."""

    def __init__(self, limits: dict[str, tuple[float, float]], settings: DetectorSettings) -> None:
        self.limits = dict(limits)
        self.settings = settings
        s = settings
        self._abrupt_readings = ABRUPT_TIME_CONSTANTS / s.levelAlpha
        self._half_learned = max(2, s.warmupReadings // 2)
        self._quarter_learned = max(3, s.warmupReadings // 4)
        # What the hot loop reads for every reading, in one tuple (one attribute load, not twenty).
        absorbing = s.baselineAlpha * ABSORB_FACTOR
        self._hot = (s.warmupReadings, s.levelAlpha, 1.0 - s.levelAlpha, s.baselineAlpha, absorbing,
                     s.baselineAlpha * SPREAD_RATE, absorbing * SPREAD_RATE, s.spikeZ, s.levelZ,
                     s.driftZ, s.varianceRatio,
                     s.stuckFactor, s.stuckReadings, self._half_learned, self._quarter_learned,
                     self._abrupt_readings, s.levelAlpha / ABRUPT_TIME_CONSTANTS, s.baselineAlpha / LONG_MEMORY,
                     self.limits)

    def new_model(self) -> DeviceModel:
        return DeviceModel()

    def outside_limits(self, timestamp_ms: int, values: dict[str, float]) -> list[Episode]:
        """Closed one-reading `limit` episodes for a reading the model cannot take (older than what it
        has seen: a batch replayed after later ones). The hard limits need no model, so an implausible
        value is reported whatever the order of delivery; the model itself does not move."""
        found = []
        for name, x in values.items():
            bounds = self.limits.get(name)
            if bounds is not None and not bounds[0] <= x <= bounds[1]:
                found.append(Episode(name, LIMIT, (name,), timestamp_ms, ended_at=timestamp_ms,
                                     peak_score=1.0 + _outside(x, bounds)))
        return found

    def observe(self, model: DeviceModel, timestamp_ms: int, values: dict[str, float]) -> list[Episode]:
        """One reading, strictly newer than every reading the model has seen.

        Updates the model and returns copies of the episodes this reading
        opened, extended or closed (a closed one has ended_at set and is no
        longer in model.open_episodes), in scope order.
        """
        if timestamp_ms <= model.last_timestamp_ms and model.readings:
            raise ValueError(f"reading at {timestamp_ms} is not newer than {model.last_timestamp_ms}")
        s = self.settings
        sensors = model.sensors
        if not model.readings:
            model.first_timestamp_ms = timestamp_ms
        model.readings += 1
        model.last_timestamp_ms = timestamp_ms
        joint = model.joint
        if joint is None or values.keys() != joint.names:
            # Another set of sensors: a model of this set, learned afresh (a single sensor has none).
            joint = model.joint = JointModel(tuple(sorted(values))) if len(values) > 1 else None
        # The sensors' models before this reading, in case the joint model names one (see below).
        joint_scores = joint is not None and joint.n >= s.warmupReadings - self._half_learned
        before = sensors.copy() if joint_scores else sensors

        # Every sensor scored against what was learned before this reading, and learning from it.
        flags: dict[str, tuple[str, float]] = {}   # sensor -> (kind, score) of its strongest test
        deviations: dict[str, float] = {}          # sensor -> standardised level deviation, once learned
        self._sensors(sensors, timestamp_ms, values, flags, deviations, _NOBODY, model.first_timestamp_ms)

        # The joint model: over the sensors of this reading, once each is half learned.
        joint_flag = None
        joint_learns = False
        if joint is not None and len(deviations) == len(values):
            u = [deviations[name] for name in joint.sensors]
            if joint_scores:
                score, whitened = _joint_score(joint, u)
                if score > s.jointZ:
                    named = _contributors(joint, u, whitened)
                    joint_flag = (score / s.jointZ, named)
                    # A sensor the joint model names learns as an abnormal one: it learned as a normal
                    # one above, so it learns again from its model before this reading.
                    relearn = {name: values[name] for name in named if name not in flags}
                    if relearn:
                        for name in relearn:
                            sensors[name] = before[name]
                        self._sensors(sensors, timestamp_ms, relearn, flags, deviations, frozenset(named),
                                      model.first_timestamp_ms)
                # It learns only from readings well inside normal, so a broken correlation
                # just under the threshold is not learned as the new normal.
                joint_learns = score < JOINT_LEARN_BELOW * s.jointZ and model.readings % JOINT_LEARN_EVERY == 0
            else:
                joint_learns = True
            if joint_learns and not flags and joint_flag is None:
                joint.learn(u, s.baselineAlpha * JOINT_LEARN_EVERY)

        # Episodes.
        changed: list[Episode] = []
        open_episodes = model.open_episodes
        for name, (kind, score) in flags.items():
            self._abnormal(open_episodes, name, kind, score, (name,), timestamp_ms, changed)
        # The joint model reports what the sensors' own tests do not: not when every sensor it names
        # is already in an episode of its own (it would repeat it), unless its episode is open.
        if joint_flag is not None and (DEVICE_SCOPE in open_episodes
                                       or not all(name in open_episodes for name in joint_flag[1])):
            self._abnormal(open_episodes, DEVICE_SCOPE, MULTIVARIATE, joint_flag[0], joint_flag[1], timestamp_ms,
                           changed)
        if open_episodes:
            settle_readings, settle_ms = s.settleReadings, s.settleMs
            for scope in list(open_episodes):
                episode = open_episodes[scope]
                if episode.last_abnormal_at == timestamp_ms:
                    continue
                episode.seen += 1
                if (episode.seen - episode.readings >= settle_readings
                        and timestamp_ms - episode.last_abnormal_at >= settle_ms):
                    del open_episodes[scope]
                    episode.ended_at = episode.last_abnormal_at
                    changed.append(episode.copy())
        if len(changed) > 1:
            changed.sort(key=_scope_order)
        return changed

    def _sensors(self, sensors: dict[str, SensorState], timestamp_ms: int, values: dict[str, float],
                 flags: dict[str, tuple[str, float]], deviations: dict[str, float], named: frozenset[str],
                 first_ms: int) -> None:
        """Score each sensor of `values` (into flags and deviations) and learn from its reading.

        A sensor flagged here or in `named` (by the joint model) is abnormal and learns slowly
        (see ABSORB_FACTOR); the others go on learning, so one sensor's long episode does not
        freeze its neighbours' baselines while their own cycles move on. The hot loop: settings
        and constants are locals, each sensor's model one tuple unpacked and rebuilt.
        """
        (warmup, level_alpha, keep_level, baseline_alpha, absorbing, spread_alpha, absorbing_spread, spike_z, level_z,
         drift_z, variance_ratio, stuck_factor, stuck_readings, half_learned, quarter_learned, abrupt_readings,
         trend_alpha, long_rate, limits) = self._hot
        sqrt = math.sqrt
        for name, x in values.items():
            sensor = sensors.get(name)
            if sensor is None:
                if len(sensors) >= MAX_TRACKED_SENSORS:
                    _evict(sensors, set(values))
                sensor = new_sensor(x)
            bounds = limits.get(name)
            if bounds is not None and not bounds[0] <= x <= bounds[1]:
                flags[name] = (LIMIT, 1.0 + _outside(x, bounds))
                sensors[name] = sensor[:LAST_SEEN] + (timestamp_ms,)
                continue  # implausible: learned from in no way
            (n, level, trend, baseline, var_r, var_d, long_mean, long_var, fast_r2, fast_r, last, run, longest_run,
             step, change_rate, tail, outliers, jumped_at, was_outside, reference, season, last_seen) = sensor
            if n == 0:
                sensors[name] = (1,) + sensor[1:LAST_SEEN] + (timestamp_ms,)
                continue
            x_raw = x
            if season is None and n >= warmup and timestamp_ms - first_ms >= SEASON_START_MS:
                season = (timestamp_ms, 0, 0.0, _NO_OFFSETS)
            if season:
                # The weekly profile's offset now (linear between bin centres); once applied, the
                # sensor's tests read the reading less its offset.
                season_start, season_applied, residual, offsets = season
                position = (timestamp_ms % SEASON_PERIOD_MS) * _SEASON_BINS_PER_MS - 0.5
                low = math.floor(position)
                share = position - low
                low %= SEASON_BINS
                high = low + 1 if low + 1 < SEASON_BINS else 0
                expected = offsets[low] * (1.0 - share) + offsets[high] * share
                if not season_applied and timestamp_ms - season_start >= SEASON_LEARN_PERIODS * SEASON_PERIOD_MS:
                    mean = sum(offsets) / SEASON_BINS
                    explained = sum((o - mean) * (o - mean) for o in offsets) / SEASON_BINS
                    if explained >= SEASON_EXPLAINED * (explained + residual):
                        season_applied = 1
                        level -= expected  # from now on the level is of the readings less their offsets
                        trend -= expected
                        # ... and the long memory's variance is what the profile leaves.
                        long_var = long_var - explained if long_var - explained > residual else residual
                    else:
                        season = ()  # no weekly pattern worth its state: the profile goes
                if season_applied:
                    x -= expected
            r = x - level
            floor = STEP_FLOOR * step
            relative = RELATIVE_SPREAD_FLOOR * (baseline if baseline >= 0.0 else -baseline)
            if relative > floor:
                floor = relative
            if floor < ABSOLUTE_SPREAD_FLOOR:
                floor = ABSOLUTE_SPREAD_FLOOR
            floor *= floor
            floored_var_r = var_r if var_r > floor else floor
            sd_r = sqrt(floored_var_r)
            # The short-term level follows an outlier only as far as CLIP_SPREADS spreads, so one
            # spike does not look like a level shift; a second outlier on the same side confirms a
            # new level, and the level moves there at once.
            r_spike = spike_z * sd_r
            # ... beyond the spike threshold and beyond what this sensor's normal outliers reach.
            r_jump = OUTLIER_MARGIN * outliers * sd_r
            if r_jump < r_spike:
                r_jump = r_spike
            outside = 0 if -r_jump <= r <= r_jump else (1 if r > 0 else -1)
            jumped = outside and outside == was_outside
            if jumped:
                new_level = x
            else:
                clip = CLIP_SPREADS * sd_r
                new_level = level + level_alpha * (r if -clip < r < clip else (clip if r > 0 else -clip))
            d = new_level - baseline
            # A level is judged against its own normal wander, but never finer than a share of the
            # reading-to-reading spread: a slow cycle or wander smaller than the noise is not news.
            level_floor = _LEVEL_NOISE_SHARE_SQUARED * floored_var_r
            floored_var_d = var_d if var_d >= level_floor else level_floor
            # The short-term variance takes an outlier only up to the spike threshold: one spike
            # alone does not make a variance change. It is the spread of r about its short-term mean:
            # while the level ramps, r is biased (the level lags), and a ramp is no variance change.
            r2 = r * r
            if -r_spike < r < r_spike:
                new_fast_r2 = keep_level * fast_r2 + level_alpha * r2
                new_fast_r = keep_level * fast_r + level_alpha * r
            else:
                new_fast_r2 = keep_level * fast_r2 + level_alpha * r_spike * r_spike
                new_fast_r = keep_level * fast_r + level_alpha * (r_spike if r > 0 else -r_spike)
            if n >= half_learned:
                # The joint model reads the reading itself against the baseline (not the smoothed
                # level), so a correlation broken for a few readings shows too.
                deviations[name] = (x - baseline) / sqrt(floored_var_d + floored_var_r)
            flagged = False
            if n >= warmup:
                kind, score = None, 0.0
                z_r = ((r if r >= 0.0 else -r) / sd_r
                       / (spike_z if tail <= GAUSSIAN_TAIL else spike_z * self._tail_factor(tail)))
                if z_r > 1.0:
                    kind, score = SPIKE, z_r
                variance_threshold = floored_var_r * variance_ratio
                ratio = (new_fast_r2 - new_fast_r * new_fast_r) / variance_threshold
                if ratio > 1.0 and ratio > score:
                    kind, score = VARIANCE, ratio
                else:
                    # A ramp so fast that the innovations' bias alone passes varianceRatio (the level lags
                    # it by sqrt(varianceRatio) spreads: a rate-of-change alarm) is a level change under
                    # way, reported before the level itself is levelZ from the baseline.
                    ratio = new_fast_r2 / variance_threshold
                    if ratio > 1.0 and ratio > score:
                        kind, score = LEVEL_SHIFT, ratio
                if jumped:
                    jumped_at = n
                sd_d = sqrt(floored_var_d)
                z_d = d / sd_d
                a_z_d = z_d if z_d >= 0.0 else -z_d
                if a_z_d > level_z and reference != baseline:
                    # The baseline went on learning (slowly) while the sensor was abnormal. A level back
                    # within levelZ of the baseline it had before is the anomaly over, not a new one:
                    # that baseline is restored (what the anomaly taught it is forgotten).
                    z_reference = (new_level - reference) / sd_d
                    if -level_z <= z_reference <= level_z:
                        baseline = reference
                        d = new_level - baseline
                        a_z_d = z_reference if z_reference >= 0.0 else -z_reference
                if a_z_d > level_z:
                    # Abrupt if the level jumped (outliers confirmed it) within ABRUPT_TIME_CONSTANTS level
                    # time constants, or moved there so fast that the trend is ABRUPT_SHARE of the deviation
                    # behind it (a noisy sensor's level follows a step without confirmed outliers). A level
                    # that crept there is a drift, from driftZ on.
                    behind = new_level - trend
                    if ((jumped_at >= 0 and n - jumped_at <= abrupt_readings)
                            or (behind if behind >= 0.0 else -behind) >= ABRUPT_SHARE * (d if d >= 0.0 else -d)):
                        shifted, ratio = LEVEL_SHIFT, a_z_d / level_z
                    else:
                        shifted, ratio = DRIFT, a_z_d / drift_z
                    if ratio > 1.0:
                        if ratio > score:
                            kind, score = shifted, ratio
                        elif kind is None or KIND_STRENGTH[shifted] > KIND_STRENGTH[kind]:
                            kind = shifted
                if kind is None:
                    # A level that crept away while the spreads kept up with it: against the long memory.
                    long_d = new_level - long_mean
                    long_spread2 = long_var if long_var > floored_var_r else floored_var_r
                    if long_d * long_d > drift_z * drift_z * long_spread2:
                        kind, score = DRIFT, (long_d if long_d >= 0.0 else -long_d) / (drift_z * sqrt(long_spread2))
                # Only a sensor whose normal reading-to-reading spread shows at its resolution can be
                # stuck: one that changes by less than a step between readings repeats values normally.
                if x_raw == last and change_rate >= STUCK_CHANGE_RATE:
                    threshold = stuck_factor * (longest_run + 1)
                    if not threshold > stuck_readings:
                        threshold = stuck_readings
                    if run + 2 >= threshold:
                        kind, score = STUCK, (run + 2) / threshold
                if kind is not None:
                    flags[name] = (kind, score)
                    flagged = True
            abnormal = flagged or name in named

            # Learn.
            n += 1
            # Every reading, outliers included, tells how heavy the tail is.
            beyond = 1.0 if r2 > _CLIP_SPREADS_SQUARED * var_r else 0.0
            if n > quarter_learned:
                # Quantile tracking: up by a share of itself when exceeded, down otherwise, so that in
                # equilibrium a share 1 - OUTLIER_QUANTILE of readings lies beyond it; like the spreads,
                # at ABSORB_FACTOR of the rate from abnormal readings.
                if r2 > outliers * outliers * floored_var_r:
                    outliers *= _OUTLIER_UP_ABSORBING if abnormal else _OUTLIER_UP
                else:
                    outliers *= _OUTLIER_DOWN_ABSORBING if abnormal else _OUTLIER_DOWN
            long_error = x - long_mean
            if n <= warmup:
                a = 1.0 / n
                tail += a * (beyond - tail)
                baseline += a * (x - baseline)
                long_mean += a * long_error
                long_var += a * (long_error * long_error - long_var)
            else:
                tail += baseline_alpha * (beyond - tail)
                baseline += (absorbing if abnormal else baseline_alpha) * (x - baseline)
                # Spreads learn from normal readings, and at the absorbing rate from abnormal ones (so a
                # spread misjudged in the warm-up cannot keep a sensor abnormal for ever), clipped
                # against heavy tails.
                a = absorbing_spread if abnormal else spread_alpha
                # The long memory, clipped like the spreads (see LONG_MEMORY).
                long_limit = _SPREAD_CLIP_SQUARED * long_var
                long_error2 = long_error * long_error
                if long_error2 > long_limit:
                    long_error2 = long_limit
                    long_error = sqrt(long_limit) if long_error > 0.0 else -sqrt(long_limit)
                long_mean += long_rate * long_error
                long_var += long_rate * (long_error2 - long_var)
            # (Not in the first quarter of the warm-up: there is no spread to clip against yet.)
            unclipped = n <= quarter_learned
            limit_r = _SPREAD_CLIP_SQUARED * var_r
            var_r += a * ((r2 if r2 < limit_r or unclipped else limit_r) - var_r)
            limit_d = _SPREAD_CLIP_SQUARED * var_d
            d2 = d * d
            var_d += a * ((d2 if d2 < limit_d or unclipped else limit_d) - var_d)
            delta = x_raw - last
            if not flagged:
                change_rate += a * ((1.0 if delta else 0.0) - change_rate)
            if delta:
                if delta < 0:
                    delta = -delta
                if step == 0.0:
                    step = delta
                elif not flagged:
                    step += a * ((delta if delta < 4.0 * step else 4.0 * step) - step)
                if run > longest_run:
                    threshold = stuck_factor * (longest_run + 1)
                    if not threshold > stuck_readings:
                        threshold = stuck_readings
                    if run + 1 < threshold:
                        longest_run = run  # a run that ended without being stuck was normal
                run = 0
                last = x_raw
            else:
                run += 1
                if n <= warmup and run > longest_run:
                    longest_run = run  # learning: even a sensor constant so far is normal
            if season and not (abnormal and season_applied):
                # The profile learns each bin's mean offset from the baseline over about
                # SEASON_MEMORY_PERIODS weeks (evenly over the first ones); once applied, from normal
                # readings only (before, the weekly pattern itself is what looks abnormal).
                visits = (timestamp_ms - season_start) / SEASON_PERIOD_MS + 1.0
                rate = (timestamp_ms - last_seen) / _SEASON_BIN_MS / (
                    visits if visits < SEASON_MEMORY_PERIODS else SEASON_MEMORY_PERIODS)
                if rate > 1.0:
                    rate = 1.0
                error = x_raw - baseline - expected
                # ... and the variance the profile leaves, over the same memory.
                residual += rate * _SEASON_BIN_MS / SEASON_PERIOD_MS * (error * error - residual)
                error *= rate
                offsets = offsets.copy()
                offsets[low] = _f32(offsets[low] + (1.0 - share) * error)
                offsets[high] = _f32(offsets[high] + share * error)
                season = (season_start, season_applied, residual, offsets)
            trend += trend_alpha * (new_level - trend)
            sensors[name] = (n, new_level, trend, baseline, var_r, var_d, long_mean, long_var, new_fast_r2, new_fast_r,
                             last, run, longest_run, step, change_rate, tail, outliers, jumped_at, outside,
                             reference if abnormal else baseline, season, timestamp_ms)

    @staticmethod
    def _tail_factor(tail: float) -> float:
        """How much wider the spike threshold is for a sensor with this share of readings beyond CLIP_SPREADS."""
        return 1.0 + TAIL_WIDENING * math.log10(tail / GAUSSIAN_TAIL)

    @staticmethod
    def _abnormal(open_episodes: dict[str, Episode], scope: str, kind: str, score: float, sensors: tuple[str, ...],
                  timestamp_ms: int, changed: list[Episode]) -> None:
        episode = open_episodes.get(scope)
        if episode is not None and timestamp_ms - episode.started_at >= MAX_EPISODE_MS:
            del open_episodes[scope]
            episode.ended_at = episode.last_abnormal_at
            changed.append(episode.copy())
            episode = open_episodes[scope] = Episode(scope, episode.kind, sensors, timestamp_ms, peak_score=score,
                                                     continued=True)
            changed.append(episode.copy())
            return
        if episode is None:
            episode = open_episodes[scope] = Episode(scope, kind, sensors, timestamp_ms, peak_score=score)
            changed.append(episode.copy())
            return
        episode.seen += 1
        episode.readings = episode.seen
        episode.last_abnormal_at = timestamp_ms
        if KIND_STRENGTH[kind] > KIND_STRENGTH[episode.kind]:
            episode.kind = kind
        if score > episode.peak_score:
            episode.peak_score = score
            if scope == DEVICE_SCOPE:
                episode.sensors = sensors
        changed.append(episode.copy())


def _scope_order(episode: Episode) -> tuple:
    return (episode.scope, episode.started_at)


def _evict(sensors: dict[str, SensorState], keep: set[str]) -> None:
    candidates = [(sensor[LAST_SEEN], name) for name, sensor in sensors.items() if name not in keep]
    if candidates:
        del sensors[min(candidates)[1]]


def _outside(x: float, bounds: tuple[float, float]) -> float:
    """How far outside the limits, in spans of the limits."""
    low, high = bounds
    span = max(high - low, ABSOLUTE_SPREAD_FLOOR)
    return (low - x) / span if x < low else (x - high) / span


def _joint_score(joint: JointModel, u: list[float]) -> tuple[float, list[float]]:
    """T-squared of u as a standard normal score (Wilson-Hilferty), and u whitened (T-squared = |whitened|^2).

    With M = L L^T the regularised covariance, T-squared = u^T M^-1 u = |w|^2 for L w = u: one
    forward substitution a reading, n^2 / 2 products.
    """
    rows, reciprocals = joint.factor()
    whitened: list[float] = []
    for row, value, reciprocal in zip(rows, u, reciprocals):
        # row holds L[i][0..i]; map stops at the end of whitened (j < i).
        whitened.append((value - sum(map(mul, row, whitened))) * reciprocal)
    t2 = sum(map(mul, whitened, whitened))
    if t2 <= 0.0:
        return 0.0, whitened
    # (T2/k)^(1/3) is close to normal with mean 1 - 2/(9k) and variance 2/(9k).
    size = len(u)
    v = 2.0 / (9.0 * size)
    return ((t2 / size) ** (1.0 / 3.0) - (1.0 - v)) / math.sqrt(v), whitened


def _contributors(joint: JointModel, u: list[float], whitened: list[float]) -> tuple[str, ...]:
    """The sensors whose contributions to T-squared make up JOINT_NAMED_SHARE of it (at most JOINT_MAX_NAMED).

    Sensor i contributes u[i] * (M^-1 u)[i]; M^-1 u solves L^T z = whitened (back substitution).
    """
    rows, reciprocals = joint.factor()
    size = len(u)
    z = [0.0] * size
    for i in range(size - 1, -1, -1):
        total = whitened[i]
        for k in range(i + 1, size):
            total -= rows[k][i] * z[k]
        z[i] = total * reciprocals[i]
    contributions = list(map(mul, u, z))
    t2 = sum(contributions)
    order = sorted(range(size), key=lambda i: (-contributions[i], i))
    named, total = [], 0.0
    for i in order[:JOINT_MAX_NAMED]:
        named.append(joint.sensors[i])
        total += contributions[i]
        if total >= JOINT_NAMED_SHARE * t2:
            break
    return tuple(sorted(named))


def _cholesky(lower: list[float], size: int, ridge: float) -> tuple[list[list[float]], list[float]]:
    """The lower Cholesky factor L of S + ridge * mean(diag S) * I, S the symmetric matrix with lower
    triangle `lower`: its rows (row i holds L[i][0..i]) and the reciprocals of its diagonal.

    The ridge keeps the matrix positive definite (a pivot is floored all the same, against rounding)."""
    shift = ridge * max(sum(lower[i * (i + 3) // 2] for i in range(size)) / size, ABSOLUTE_SPREAD_FLOOR)
    rows: list[list[float]] = []
    reciprocals: list[float] = []
    k = 0
    for i in range(size):
        row: list[float] = []
        for j in range(i):
            # map stops at the end of row (the columns before j).
            row.append((lower[k + j] - sum(map(mul, row, rows[j]))) * reciprocals[j])
        square = lower[k + i] + shift - sum(map(mul, row, row))
        pivot = math.sqrt(square if square > shift * ridge else shift * ridge)
        row.append(pivot)
        reciprocals.append(1.0 / pivot)
        rows.append(row)
        k += i + 1
    return rows, reciprocals
