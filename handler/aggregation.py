"""Per-device, per-minute aggregates of sensor values. Pure.

A window records which readings it holds (their millisecond offset in the
minute and a 16-bit digest of their content), so merging the same reading
twice (a duplicate, a replay, a bisected half) changes nothing, and the same
timestamp with other content is told apart as a conflict. The record is
bounded whatever the rate: at most 60,000 readings fit in a minute on a
millisecond clock (see docs/processor.md, "Consistency model").

Sums are exact: a float is an integer multiple of 2**-1074, so the sum is kept
as that integer, and adding the same readings in any order gives the same
stored value.
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections.abc import Iterable, Sequence
from math import fsum

WINDOW_MS = 60_000
# Below this many readings the offsets are listed (2 bytes each); above it a
# bitmap of the minute's 60,000 milliseconds is smaller.
_DENSE_FROM = WINDOW_MS // 16
_SPARSE, _DENSE = 0, 1
_BITMAP_BYTES = WINDOW_MS // 8
# The largest encoded record: format byte, bitmap, a digest per millisecond.
MAX_APPLIED_BYTES = 1 + _BITMAP_BYTES + 2 * WINDOW_MS
_EXACT_SHIFT = 1074  # 2**-1074 is the smallest positive float


def window_start(timestamp_ms: int) -> int:
    return timestamp_ms - timestamp_ms % WINDOW_MS


def _uint16(values: Iterable[int]) -> array[int]:
    encoded = array("H", values)
    if sys.byteorder == "big":  # stored little-endian, whatever the machine
        encoded.byteswap()
    return encoded


def _from_uint16(data: bytes) -> array[int]:
    decoded = array("H")
    decoded.frombytes(data)
    if sys.byteorder == "big":
        decoded.byteswap()
    return decoded


def encode_applied(applied: dict[int, int]) -> bytes:
    """Offsets (ms in the minute) to digests, as the window item stores them."""
    offsets = sorted(applied)
    digests = _uint16(applied[offset] for offset in offsets).tobytes()
    if len(offsets) < _DENSE_FROM:
        return bytes((_SPARSE,)) + _uint16(offsets).tobytes() + digests
    bitmap = bytearray(_BITMAP_BYTES)
    for offset in offsets:
        bitmap[offset >> 3] |= 1 << (offset & 7)
    return bytes((_DENSE,)) + bytes(bitmap) + digests


def decode_applied(data: bytes) -> dict[int, int]:
    if not data:
        return {}
    if data[0] == _SPARSE:
        count = (len(data) - 1) // 4
        offsets = _from_uint16(data[1 : 1 + 2 * count])
        digests = _from_uint16(data[1 + 2 * count :])
        return dict(zip(offsets, digests))
    bitmap = data[1 : 1 + _BITMAP_BYTES]
    held = [(index << 3) | bit for index, byte in enumerate(bitmap) if byte for bit in range(8) if byte >> bit & 1]
    return dict(zip(held, _from_uint16(data[1 + _BITMAP_BYTES :])))


def exact_to_float(total: int) -> float:
    return total / (1 << _EXACT_SHIFT)  # int division rounds correctly, whatever the size


def exact_to_text(total: int) -> str:
    """Canonical text: odd numerator and the power of two, `n:k` meaning n * 2**-k."""
    if total == 0:
        return "0:0"
    shift = (total & -total).bit_length() - 1
    return f"{total >> shift}:{_EXACT_SHIFT - shift}"


def exact_from_text(text: str) -> int:
    numerator, power = text.split(":")
    return int(numerator) << (_EXACT_SHIFT - int(power))


def exact_sum(values: Iterable[float]) -> int:
    """The exact sum of finite floats (or ints below 2**53) as an integer multiple of 2**-1074.

    math.fsum (C speed) gives the sum rounded to a float; the float of what is
    left once that is subtracted is the next term, until nothing is left. Each
    round leaves less than the last term's rounding error, and everything is a
    multiple of 2**-1074, so a few rounds end it (two or three for sensor data).
    The same integer as adding every value's exact integer, many times faster.
    """
    terms = list(values)
    total = 0
    part = fsum(terms)
    while part:
        numerator, denominator = part.as_integer_ratio()
        total += numerator << (_EXACT_SHIFT + 1 - denominator.bit_length())
        terms.append(-part)
        part = fsum(terms)
    return total


class SensorStats:
    __slots__ = ("count", "total", "minimum", "maximum", "last", "last_timestamp_ms")

    def __init__(self, count: int, total: int, minimum: float, maximum: float, last: float,
                 last_timestamp_ms: int) -> None:
        self.count = count
        self.total = total  # exact: an integer multiple of 2**-1074
        self.minimum = minimum
        self.maximum = maximum
        self.last = last
        self.last_timestamp_ms = last_timestamp_ms

    @property
    def mean(self) -> float:
        return exact_to_float(self.total) / self.count

    def merge(self, count: int, total: int, minimum: float, maximum: float, last: float,
              last_timestamp_ms: int) -> None:
        """Take in readings that came after the ones held; equal extremes keep the one held (the first)."""
        self.count += count
        self.total += total
        if minimum < self.minimum:
            self.minimum = minimum
        if maximum > self.maximum:
            self.maximum = maximum
        if last_timestamp_ms >= self.last_timestamp_ms:
            self.last = last
            self.last_timestamp_ms = last_timestamp_ms


class Window:
    """One device's readings in one minute: statistics per sensor and the readings applied.

    Readings added are held until the statistics are read (`sensors`), then
    taken in per sensor at once: a column's min, max and exact sum are a few
    passes in C instead of a few Python operations per value.
    """

    __slots__ = ("start_ms", "applied", "_sensors", "changed", "stored_count", "_times", "_values")

    def __init__(self, start_ms: int, applied: dict[int, int] | None = None, stored_count: int | None = None) -> None:
        self.start_ms = start_ms
        self.applied = applied if applied is not None else {}
        self._sensors: dict[str, SensorStats] = {}
        self.changed = False
        # reading_count as read from the table (None: the item did not exist): the write's condition.
        self.stored_count = stored_count
        self._times: list[int] = []                 # readings added and not taken in yet,
        self._values: list[dict[str, float]] = []   # in the order they were added

    def digest_at(self, timestamp_ms: int) -> int | None:
        """The digest of the reading held at this timestamp, or None."""
        return self.applied.get(timestamp_ms - self.start_ms)

    def add(self, timestamp_ms: int, digest: int, values: dict[str, float]) -> None:
        """Merge one reading whose timestamp the window does not hold yet (`values` is kept, not copied)."""
        self.applied[timestamp_ms - self.start_ms] = digest
        self.changed = True
        self._times.append(timestamp_ms)
        self._values.append(values)

    @property
    def sensors(self) -> dict[str, SensorStats]:
        if self._times:
            self._take_in()
        return self._sensors

    def _take_in(self) -> None:
        times, readings = self._times, self._values
        self._times, self._values = [], []
        names = readings[0].keys()
        if not all(map(names.__eq__, map(dict.keys, readings))):
            for timestamp_ms, values in zip(times, readings):  # readings naming different sensors: one at a time
                for name, value in values.items():
                    self._merge(name, (value,), timestamp_ms, value)
            return
        # The latest reading gives `last` (of equal times the one added last, as adding one by one would).
        latest = max(reversed(range(len(times))), key=times.__getitem__)
        if len(names) == 1:
            (name,) = names
            columns: Iterable[Sequence[float]] = ([values[name] for values in readings],)
        else:
            columns = zip(*map(operator.itemgetter(*names), readings))
        for name, column in zip(names, columns):
            self._merge(name, column, times[latest], column[latest])

    def _merge(self, name: str, column: Sequence[float], latest_ms: int, latest_value: float) -> None:
        stats = self._sensors.get(name)
        if stats is None:
            self._sensors[name] = SensorStats(len(column), exact_sum(column), min(column), max(column), latest_value,
                                              latest_ms)
        else:
            stats.merge(len(column), exact_sum(column), min(column), max(column), latest_value, latest_ms)
