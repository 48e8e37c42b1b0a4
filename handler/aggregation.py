"""Per-device, per-minute aggregates of sensor values. Pure.

A window remembers the timestamps it has aggregated, so merging the same
reading twice (a duplicate, a replay, a bisected half) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW_MS = 60_000


def window_start(timestamp_ms: int) -> int:
    return timestamp_ms - timestamp_ms % WINDOW_MS


@dataclass(slots=True)
class SensorStats:
    count: int
    total: float
    minimum: float
    maximum: float
    last: float
    last_timestamp_ms: int

    @property
    def mean(self) -> float:
        return self.total / self.count


@dataclass(slots=True)
class Window:
    """One device's readings in one minute: statistics per sensor and the timestamps seen."""

    start_ms: int
    seen: set[int] = field(default_factory=set)
    sensors: dict[str, SensorStats] = field(default_factory=dict)
    changed: bool = False

    def add(self, timestamp_ms: int, values: dict[str, float]) -> bool:
        """Merge one reading; False (and no change) if its timestamp is already in the window."""
        if timestamp_ms in self.seen:
            return False
        self.seen.add(timestamp_ms)
        self.changed = True
        sensors = self.sensors
        for name, value in values.items():
            stats = sensors.get(name)
            if stats is None:
                sensors[name] = SensorStats(1, value, value, value, value, timestamp_ms)
                continue
            stats.count += 1
            stats.total += value
            if value < stats.minimum:
                stats.minimum = value
            if value > stats.maximum:
                stats.maximum = value
            if timestamp_ms >= stats.last_timestamp_ms:
                stats.last = value
                stats.last_timestamp_ms = timestamp_ms
        return True
