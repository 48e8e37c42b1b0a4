"""Anomaly detection per device and sensor, with state carried across batches.

Pure. Each sensor keeps an exponentially weighted mean and variance (EWMA), a
slow reference level, and the length of its current run of identical values.
From these, without any threshold tuned to the sensor:

- spike: a reading far from the running mean (in standard deviations);
- jump:  several such readings in a row on the same side: the level itself
         moved. Reported once, at the first of them, and the model restarts at
         the new level. So that a jump is not also reported as spikes, an
         outlier is held (in the state, across batches if need be) until the
         next reading decides: back to normal, it is a spike; the run goes
         on to the confirmation count, they are one jump;
- stuck: the same value many times in a row;
- drift: the running mean has wandered far from the slow reference level.

Hard limits per sensor type add `limit`. Readings that are anomalies do not
update the model, so one bad value does not widen what counts as normal.
"""

from __future__ import annotations

import math
from collections import namedtuple

from handler.settings import DetectorSettings

LIMIT = "limit"
SPIKE = "spike"
JUMP = "jump"
STUCK = "stuck"
DRIFT = "drift"
KINDS = (LIMIT, SPIKE, JUMP, STUCK, DRIFT)

# Standard deviations are floored relative to the level, so a quiet sensor
# (or one whose variance decayed while stuck) does not turn noise into spikes.
_RELATIVE_STD_FLOOR = 1e-4
_ABSOLUTE_STD_FLOOR = 1e-9


Anomaly = namedtuple("Anomaly", ["device_id", "sensor", "timestamp_ms", "value", "kind", "expected_low",
                                 "expected_high", "score", "sequence_number"])


class SensorState:
    """One sensor's running statistics (see the module docstring)."""

    __slots__ = ("count", "mean", "variance", "last", "flat_run", "reference", "held", "held_sign",
                 "stuck_reported")

    def __init__(self, count: int = 0, mean: float = 0.0, variance: float = 0.0, last: float = math.nan,
                 flat_run: int = 0, reference: float = 0.0, held: list | None = None, held_sign: int = 0,
                 stuck_reported: bool = False) -> None:
        self.count = count
        self.mean = mean
        self.variance = variance
        self.last = last
        self.flat_run = flat_run
        self.reference = reference
        # Outliers in a row on one side, not yet told apart as spikes or a jump:
        # [timestamp_ms, value, expected_low, expected_high, score, sequence_number] each.
        self.held = held if held is not None else []
        self.held_sign = held_sign
        self.stuck_reported = stuck_reported

    def to_list(self) -> list:
        return [self.count, self.mean, self.variance, self.last, self.flat_run, self.reference,
                self.held, self.held_sign, int(self.stuck_reported)]

    @classmethod
    def from_list(cls, values: list) -> "SensorState":
        count, mean, variance, last, flat_run, reference, held, held_sign, stuck = values
        return cls(int(count), float(mean), float(variance), float(last) if last is not None else math.nan,
                   int(flat_run), float(reference), [list(outlier) for outlier in held], int(held_sign),
                   bool(stuck))


class DeviceState:
    """What the detector remembers of one device between batches."""

    __slots__ = ("last_timestamp_ms", "sensors")

    def __init__(self, last_timestamp_ms: int = 0, sensors: dict[str, SensorState] | None = None) -> None:
        self.last_timestamp_ms = last_timestamp_ms
        self.sensors = sensors



class Detector:
    """Applies one stack's limits and settings to readings, in time order per device."""

    def __init__(self, limits: dict[str, tuple[float, float]], settings: DetectorSettings) -> None:
        self.limits = limits
        self.settings = settings

    def check_limits(self, device_id: str, timestamp_ms: int, values: dict[str, float],
                     sequence_number: str, found: list[Anomaly]) -> None:
        """Hard limits only: for readings that arrive after newer ones (no model update)."""
        limits = self.limits
        for name, value in values.items():
            bounds = limits.get(name)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                found.append(Anomaly(device_id, name, timestamp_ms, value, LIMIT, bounds[0], bounds[1],
                                     _limit_score(value, bounds), sequence_number))

    def observe(self, device: DeviceState, device_id: str, timestamp_ms: int, values: dict[str, float],
                sequence_number: str, found: list[Anomaly]) -> None:
        """Check one reading against the device's model, update the model, append anomalies to `found`."""
        settings = self.settings
        limits = self.limits
        sensors = device.sensors
        if sensors is None:
            sensors = device.sensors = {}
        for name, value in values.items():
            state = sensors.get(name)
            if state is None:
                state = sensors[name] = SensorState()
            bounds = limits.get(name)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                found.append(Anomaly(device_id, name, timestamp_ms, value, LIMIT, bounds[0], bounds[1],
                                     _limit_score(value, bounds), sequence_number))
                continue
            if value == state.last:
                self._repeat(state, device_id, name, timestamp_ms, value, sequence_number, found)
                continue
            state.flat_run = 0
            state.stuck_reported = False
            count = state.count
            if count >= settings.warmup:
                mean = state.mean
                std = _std(state.variance, mean)
                deviation = value - mean
                score = (deviation if deviation >= 0 else -deviation) / std
                if score > settings.spike_z:
                    self._outlier(state, device_id, name, timestamp_ms, value, deviation, std, score,
                                  sequence_number, found)
                    continue
            if state.held:
                self._release_spikes(state, device_id, name, found)
            # Update: early on average evenly (as Welford would), later weight recent readings.
            count += 1
            state.count = count
            state.last = value
            if count == 1:
                state.mean = state.reference = value
                state.variance = 0.0
                continue
            alpha = settings.alpha if settings.alpha * count > 1.0 else 1.0 / count
            deviation = value - state.mean
            state.mean += alpha * deviation
            state.variance = (1.0 - alpha) * (state.variance + alpha * deviation * deviation)
            reference_alpha = settings.reference_alpha if settings.reference_alpha * count > 1.0 else 1.0 / count
            state.reference += reference_alpha * (value - state.reference)
            if count >= 2 * settings.warmup:
                std = _std(state.variance, state.mean)
                drift = abs(state.mean - state.reference) / std
                if drift > settings.drift_z:
                    found.append(Anomaly(device_id, name, timestamp_ms, value, DRIFT,
                                         state.reference - settings.drift_z * std,
                                         state.reference + settings.drift_z * std, drift, sequence_number))
                    # Re-arm: the next report needs another drift of the same size.
                    state.reference = state.mean
        if timestamp_ms > device.last_timestamp_ms:
            device.last_timestamp_ms = timestamp_ms

    def _repeat(self, state: SensorState, device_id: str, name: str, timestamp_ms: int, value: float,
                sequence_number: str, found: list[Anomaly]) -> None:
        # A repeated value carries no news about the level or the noise: only count the run.
        if state.held:  # back at the last normal value: what was held were spikes
            self._release_spikes(state, device_id, name, found)
        state.flat_run += 1
        if state.flat_run + 1 >= self.settings.stuck_count and not state.stuck_reported:
            state.stuck_reported = True
            found.append(Anomaly(device_id, name, timestamp_ms, value, STUCK, value, value,
                                 float(state.flat_run + 1), sequence_number))

    def _outlier(self, state: SensorState, device_id: str, name: str, timestamp_ms: int, value: float,
                 deviation: float, std: float, score: float, sequence_number: str, found: list[Anomaly]) -> None:
        # Not used to update the model, so one bad value does not widen what counts as normal.
        settings = self.settings
        sign = 1 if deviation > 0 else -1
        if state.held and sign != state.held_sign:
            self._release_spikes(state, device_id, name, found)
        state.held_sign = sign
        state.held.append([timestamp_ms, value, state.mean - settings.spike_z * std,
                           state.mean + settings.spike_z * std, score, sequence_number])
        if len(state.held) < settings.jump_confirm:
            return
        first = state.held[0]
        found.append(Anomaly(device_id, name, first[0], first[1], JUMP, first[2], first[3], first[4], first[5]))
        # The level moved: restart the model at the new level, keep the noise estimate.
        level = sum(outlier[1] for outlier in state.held) / len(state.held)
        state.mean = state.reference = level
        state.last = value
        state.held = []
        state.held_sign = 0

    @staticmethod
    def _release_spikes(state: SensorState, device_id: str, name: str, found: list[Anomaly]) -> None:
        for timestamp_ms, value, low, high, score, sequence_number in state.held:
            found.append(Anomaly(device_id, name, timestamp_ms, value, SPIKE, low, high, score, sequence_number))
        state.held = []
        state.held_sign = 0


def _std(variance: float, mean: float) -> float:
    std = math.sqrt(variance)
    floor = _RELATIVE_STD_FLOOR * (mean if mean >= 0 else -mean)
    if floor < _ABSOLUTE_STD_FLOOR:
        floor = _ABSOLUTE_STD_FLOOR
    return std if std > floor else floor


def _limit_score(value: float, bounds: tuple[float, float]) -> float:
    """How far outside the limits, relative to their span."""
    low, high = bounds
    span = max(high - low, _ABSOLUTE_STD_FLOOR)
    return (low - value) / span if value < low else (value - high) / span
