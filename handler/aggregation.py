"""Per-device, per-minute aggregates of sensor values. Pure.

A window remembers the timestamps it has aggregated, so merging the same
reading twice (a duplicate, a replay, a bisected half) changes nothing.
"""

from __future__ import annotations

WINDOW_MS = 60_000


def window_start(timestamp_ms: int) -> int:
    return timestamp_ms - timestamp_ms % WINDOW_MS


class SensorStats:
    __slots__ = ("count", "total", "minimum", "maximum", "last", "last_timestamp_ms")

    def __init__(self, count: int, total: float, minimum: float, maximum: float, last: float,
                 last_timestamp_ms: int) -> None:
        self.count = count
        self.total = total
        self.minimum = minimum
        self.maximum = maximum
        self.last = last
        self.last_timestamp_ms = last_timestamp_ms

    @property
    def mean(self) -> float:
        return self.total / self.count


class Window:
    """One device's readings in one minute: statistics per sensor and the timestamps seen."""

    __slots__ = ("start_ms", "seen", "sensors", "changed")

    def __init__(self, start_ms: int, seen: set[int] | None = None) -> None:
        self.start_ms = start_ms
        self.seen = seen if seen is not None else set()
        self.sensors: dict[str, SensorStats] = {}
        self.changed = False

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
