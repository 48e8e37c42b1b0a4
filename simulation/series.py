"""Realistic sensor series for a simulated factory, with injected trouble and its labels.

Pure and seedable: the same seed gives the same readings and labels. Each
device carries the known sensors; each sensor follows a slow daily-like cycle
plus noise at its own level. Injected events, each labeled with device,
sensor, kind and the reading indices it covers:

- spike: one reading far off the level;
- level_shift: the level moves and stays moved;
- drift: the level creeps away over a few hundred readings;
- stuck: the sensor repeats one value;
- limit: a physically impossible value (beyond the sensor type's hard limits).

Used by the detection-quality benchmark and the local run's simulated fleet.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterator

# Typical operating level and noise of each known sensor in a plant.
SENSOR_PROFILES: dict[str, tuple[float, float]] = {
    "temperature": (68.0, 0.4),
    "vibration": (4.0, 0.15),
    "pressure": (101.3, 0.3),
    "humidity": (45.0, 0.6),
}
LIMIT_VALUES = {"temperature": 400.0, "vibration": 120.0, "pressure": 2500.0, "humidity": 180.0}
EVENT_KINDS = ("spike", "level_shift", "drift", "stuck", "limit")


@dataclass(frozen=True)
class InjectedEvent:
    device_id: str
    sensor: str
    kind: str
    start: int
    end: int  # inclusive index of the last affected reading


@dataclass
class DeviceSeries:
    device_id: str
    readings: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FleetSeries:
    devices: list[DeviceSeries]
    events: list[InjectedEvent]
    period_ms: int


def _plan_events(rng: random.Random, device_id: str, sensors: list[str], length: int,
                 events_per_device: float, warmup: int) -> list[InjectedEvent]:
    """Non-overlapping events per sensor, after the detector's warm-up."""
    planned: list[InjectedEvent] = []
    count = int(events_per_device) + (1 if rng.random() < events_per_device % 1 else 0)
    spans = {"spike": 1, "level_shift": 150, "drift": 300, "stuck": 60, "limit": 1}
    busy: dict[str, list[tuple[int, int]]] = {sensor: [] for sensor in sensors}
    for _ in range(count * 4):
        if len(planned) >= count:
            break
        kind = rng.choice(EVENT_KINDS)
        sensor = rng.choice(sensors)
        span = spans[kind]
        if length - span - 10 <= warmup * 2:
            continue
        start = rng.randrange(warmup * 2, length - span - 10)
        end = start + span - 1
        # Leave room after an event: a level shift or drift changes what "normal" is for a while.
        if any(start <= b_end + 200 and end + 200 >= b_start for b_start, b_end in busy[sensor]):
            continue
        busy[sensor].append((start, end))
        planned.append(InjectedEvent(device_id, sensor, kind, start, end))
    return planned


def generate_fleet(devices: int, readings_per_device: int, *, seed: int = 7, sensors: list[str] | None = None,
                   events_per_device: float = 2.0, period_ms: int = 1000, warmup: int = 30) -> FleetSeries:
    rng = random.Random(seed)
    sensor_names = sensors or list(SENSOR_PROFILES)
    fleet = FleetSeries(devices=[], events=[], period_ms=period_ms)
    for index in range(devices):
        device_id = f"press-{index:03d}"
        events = _plan_events(rng, device_id, sensor_names, readings_per_device, events_per_device, warmup)
        fleet.events.extend(events)
        series = DeviceSeries(device_id)
        phases = {s: rng.uniform(0, 2 * math.pi) for s in sensor_names}
        offsets = {s: rng.uniform(-1, 1) * SENSOR_PROFILES.get(s, (50.0, 0.5))[1] * 5 for s in sensor_names}
        by_sensor: dict[str, list[InjectedEvent]] = {}
        for event in events:
            by_sensor.setdefault(event.sensor, []).append(event)
        for i in range(readings_per_device):
            values = {}
            for sensor in sensor_names:
                level, noise = SENSOR_PROFILES.get(sensor, (50.0, 0.5))
                base = level + offsets[sensor] + noise * 2 * math.sin(2 * math.pi * i / 3600 + phases[sensor])
                values[sensor] = round(_apply_events(base + rng.gauss(0, noise), i, by_sensor.get(sensor, []),
                                                     sensor, noise, series, rng), 4)
            series.readings.append(values)
        fleet.devices.append(series)
    return fleet


def _apply_events(value: float, i: int, events: list[InjectedEvent], sensor: str, noise: float,
                  series: DeviceSeries, rng: random.Random) -> float:
    stuck = False
    for event in events:
        # A level shift stays; a drift that ended leaves the level where it got to.
        if event.kind == "level_shift" and i >= event.start:
            value += 15 * noise
        elif event.kind == "drift" and i > event.end:
            value += 12 * noise
        if not event.start <= i <= event.end:
            continue
        if event.kind == "spike":
            value += rng.choice((-1, 1)) * rng.uniform(10, 14) * noise
        elif event.kind == "limit":
            value = LIMIT_VALUES.get(sensor, 1e6)
        elif event.kind == "drift":
            value += (i - event.start) / (event.end - event.start) * 12 * noise
        elif event.kind == "stuck":
            stuck = event.start > 0
    # A stuck sensor repeats its last reading whatever the process does meanwhile.
    return series.readings[-1][sensor] if stuck else value


def iter_readings(fleet: FleetSeries, start_ms: int) -> Iterator[tuple[str, int, dict[str, float]]]:
    """(device id, timestamp ms, values) in publish order: time-major, devices interleaved."""
    length = len(fleet.devices[0].readings) if fleet.devices else 0
    for i in range(length):
        for device in fleet.devices:
            yield device.device_id, start_ms + i * fleet.period_ms, device.readings[i]


@dataclass
class KindScore:
    injected: int = 0
    detected_events: int = 0
    detections: int = 0
    true_detections: int = 0

    @property
    def recall(self) -> float:
        return self.detected_events / self.injected if self.injected else float("nan")

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r and not (math.isnan(p) or math.isnan(r)) else float("nan")


# A detection counts for an event if it lands in the event's span, or up to
# this many readings after it (a detector needs evidence before it speaks).
MATCH_TOLERANCE = 30


def score(events: list[InjectedEvent], detections: list[tuple[str, str, int, str]]) -> dict[str, KindScore]:
    """Precision, recall and F1 per kind.

    `detections` are (device, sensor, reading index, kind). A detection is true
    if it lands within the span (plus MATCH_TOLERANCE readings) of an injected
    event of its own kind on that device and sensor; any other detection is
    false, including one of the wrong kind inside another event. An injected
    event is detected if at least one true detection matches it.
    """
    scores = {kind: KindScore() for kind in EVENT_KINDS}
    windows: dict[tuple[str, str, str], list[InjectedEvent]] = {}
    for event in events:
        scores[event.kind].injected += 1
        windows.setdefault((event.device_id, event.sensor, event.kind), []).append(event)
    found: set[InjectedEvent] = set()
    for device, sensor, index, kind in detections:
        kind_score = scores.setdefault(kind, KindScore())
        kind_score.detections += 1
        matching = [e for e in windows.get((device, sensor, kind), []) if e.start <= index <= e.end + MATCH_TOLERANCE]
        if matching:
            kind_score.true_detections += 1
            found.update(matching)
    for event in found:
        scores[event.kind].detected_events += 1
    return scores
