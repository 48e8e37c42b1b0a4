"""DynamoDB items of the metrics table, in the low-level attribute-value format. Pure.

Key layout and the schema of each item in handler/layout.py. Every value in an
item is derived from the data (TTLs count from the data's own time, versions
count what the item holds), so storing the same readings again yields the
same items, however the deliveries were split.
"""

from __future__ import annotations

import json
import time
from collections import namedtuple
from decimal import Decimal

from handler import layout
from handler.aggregation import (SensorStats, Window, decode_applied, encode_applied, exact_from_text,
                                 exact_to_float, exact_to_text)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from handler.detection import Episode

SEP = layout.SORT_KEY_SEPARATOR
# The partition of a shard's bookkeeping: `/` cannot occur in a device id.
SHARD_PARTITION_PREFIX = "_shard/"
QUARANTINE_SLOT_TAG = "quarantine"
QUARANTINE_SLOT_MS = 10_000

# One conditional write: `version_attribute` must still hold `expected` (None:
# the item must not exist), or no condition at all when `version_attribute` is None.
Write = namedtuple("Write", ["item", "version_attribute", "expected"])


def iso_ms(timestamp_ms: int) -> str:
    """Fixed-width UTC ISO 8601 with milliseconds: sorts chronologically as text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp_ms // 1000)) + f".{timestamp_ms % 1000:03d}Z"


# DynamoDB numbers cannot be closer to zero than 1E-130 (AWS rejects the item;
# moto does not): a float that small is stored as 0 (the archive keeps it exact).
_SMALLEST_STORED_MAGNITUDE = 1e-120


def number(value: float | int) -> dict:
    # str(Decimal(repr(x))) is exact for the float's shortest repr and uses the
    # exponent form DynamoDB accepts. A repr without exponent (1e-4 <= |x| < 1e16)
    # is what Decimal writes already: only the others pay for Decimal.
    if isinstance(value, int):
        return {"N": str(value)}
    if -_SMALLEST_STORED_MAGNITUDE < value < _SMALLEST_STORED_MAGNITUDE:
        value = 0.0  # also makes -0.0 and 0.0 one value, whichever came first
    text = repr(value)
    if "e" in text or "n" in text:  # 1e-05, 1.5e+16; inf, nan
        text = str(Decimal(text))
    return {"N": text}


def key(partition: str, sort_key: str) -> dict:
    return {layout.TABLE_PARTITION_KEY: {"S": partition}, layout.TABLE_SORT_KEY: {"S": sort_key}}


def key_of(item: dict) -> tuple[str, str]:
    return item[layout.TABLE_PARTITION_KEY]["S"], item[layout.TABLE_SORT_KEY]["S"]


def window_key(device_id: str, start_ms: int) -> dict:
    return key(device_id, f"{iso_ms(start_ms)}{SEP}{layout.METRICS_SORT_KEY_SUFFIX}")


def state_key(device_id: str) -> dict:
    return key(device_id, layout.STATE_SORT_KEY)


def episode_key(device_id: str, started_at_ms: int, scope: str) -> dict:
    return key(device_id, SEP.join((iso_ms(started_at_ms), layout.EPISODE_SORT_KEY_TAG, scope)))


def quarantine_slot_key(shard_id: str, arrival_ms: int) -> dict:
    slot = arrival_ms - arrival_ms % QUARANTINE_SLOT_MS
    return key(SHARD_PARTITION_PREFIX + shard_id, f"{QUARANTINE_SLOT_TAG}{SEP}{iso_ms(slot)}")


def _expires_at(timestamp_ms: int, ttl_days: int) -> dict:
    return number(timestamp_ms // 1000 + ttl_days * 86_400)


# -- windows -----------------------------------------------------------------

def window_write(device_id: str, window: Window, ttl_days: int) -> Write:
    sensors = {
        name: {"M": {
            "count": number(stats.count),
            "sum": number(exact_to_float(stats.total)),
            "sum_exact": {"S": exact_to_text(stats.total)},
            "min": number(stats.minimum),
            "max": number(stats.maximum),
            "mean": number(stats.mean),
            "last": number(stats.last),
            "last_timestamp_ms": number(stats.last_timestamp_ms),
        }}
        for name, stats in sorted(window.sensors.items())
    }
    item = window_key(device_id, window.start_ms)
    item.update({
        "item_type": {"S": "metrics"},
        "window_start": {"S": iso_ms(window.start_ms)},
        "reading_count": number(len(window.applied)),
        "sensors": {"M": sensors},
        "applied": {"B": encode_applied(window.applied)},
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(window.start_ms, ttl_days),
    })
    return Write(item, "reading_count", window.stored_count)


def parse_window(item: dict | None, start_ms: int) -> Window:
    if not item:
        return Window(start_ms=start_ms)
    count = int(item["reading_count"]["N"])
    window = Window(start_ms=start_ms, applied=decode_applied(item["applied"]["B"]), stored_count=count)
    for name, attribute in item.get("sensors", {}).get("M", {}).items():
        stats = attribute["M"]
        window.sensors[name] = SensorStats(
            count=int(stats["count"]["N"]),
            total=exact_from_text(stats["sum_exact"]["S"]),
            minimum=float(stats["min"]["N"]),
            maximum=float(stats["max"]["N"]),
            last=float(stats["last"]["N"]),
            last_timestamp_ms=int(stats["last_timestamp_ms"]["N"]),
        )
    return window


# -- device state --------------------------------------------------------------

class StoredState:
    """A device's `state` item: the detector's model (JSON-ready), how far it has observed, and
    fingerprints of the device's quarantined messages (most recent last)."""

    __slots__ = ("model", "watermark_ms", "observed", "bad_marks", "bad_count", "stored_version")

    def __init__(self, model: object = None, watermark_ms: int = 0, observed: int = 0,
                 bad_marks: list[str] | None = None, bad_count: int = 0, stored_version: int | None = None) -> None:
        self.model = model
        self.watermark_ms = watermark_ms
        self.observed = observed
        self.bad_marks = bad_marks if bad_marks is not None else []
        self.bad_count = bad_count
        self.stored_version = stored_version

    @property
    def version(self) -> int:
        # Counts what the state has taken in: equal versions mean the same content.
        return self.observed + self.bad_count


def state_write(device_id: str, state: StoredState, ttl_days: int, last_data_ms: int) -> Write:
    item = state_key(device_id)
    item.update({
        "item_type": {"S": "state"},
        "model": {"S": json.dumps(state.model, separators=(",", ":"), allow_nan=False)},
        "watermark_ms": number(state.watermark_ms),
        "observed": number(state.observed),
        "bad_marks": {"S": " ".join(state.bad_marks)},
        "bad_count": number(state.bad_count),
        "version": number(state.version),
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(max(state.watermark_ms, last_data_ms), ttl_days),
    })
    return Write(item, "version", state.stored_version)


def parse_state(item: dict | None) -> StoredState:
    if not item:
        return StoredState()
    return StoredState(
        model=json.loads(item["model"]["S"]),
        watermark_ms=int(item["watermark_ms"]["N"]),
        observed=int(item["observed"]["N"]),
        bad_marks=item["bad_marks"]["S"].split(),
        bad_count=int(item["bad_count"]["N"]),
        stored_version=int(item["version"]["N"]),
    )


# -- episodes --------------------------------------------------------------------

def episode_write(device_id: str, episode: Episode, ttl_days: int) -> Write:
    """An episode's item; written in its device's transaction, whose state condition covers it."""
    item = episode_key(device_id, episode.started_at, episode.scope)
    item.update({
        "item_type": {"S": "episode"},
        "scope": {"S": episode.scope},
        "kind": {"S": episode.kind},
        "sensors": {"SS": sorted(episode.sensors)},
        "started_at": number(episode.started_at),
        "last_abnormal_at": number(episode.last_abnormal_at),
        "peak_score": number(round(float(episode.peak_score), 6)),
        "readings": number(episode.readings),
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(episode.last_abnormal_at, ttl_days),
    })
    if episode.ended_at is not None:
        item["ended_at"] = number(episode.ended_at)
    return Write(item, None, None)


# -- quarantine ledger slots --------------------------------------------------------

class LedgerSlot:
    """Digests of the sequence numbers quarantined from one shard in one 10-second arrival slot."""

    __slots__ = ("marks", "stored_entries", "arrival_ms")

    def __init__(self, marks: set[bytes] | None = None, stored_entries: int | None = None, arrival_ms: int = 0) -> None:
        self.marks = marks if marks is not None else set()
        self.stored_entries = stored_entries
        self.arrival_ms = arrival_ms


_MARK_BYTES = 8


def ledger_write(slot_key: dict, slot: LedgerSlot, ttl_days: int) -> Write:
    item = dict(slot_key)
    item.update({
        "item_type": {"S": "quarantine_ledger"},
        "marks": {"B": b"".join(sorted(slot.marks))},
        "entries": number(len(slot.marks)),
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(slot.arrival_ms, ttl_days),
    })
    return Write(item, "entries", slot.stored_entries)


def parse_ledger(item: dict | None) -> LedgerSlot:
    if not item:
        return LedgerSlot()
    data = item["marks"]["B"]
    marks = {data[i : i + _MARK_BYTES] for i in range(0, len(data), _MARK_BYTES)}
    return LedgerSlot(marks=marks, stored_entries=int(item["entries"]["N"]))


def sequence_mark(sequence_number: str) -> bytes:
    import hashlib  # only batches with unidentifiable bad records pay for loading it

    return hashlib.blake2b(sequence_number.encode(), digest_size=_MARK_BYTES).digest()


# -- sizes, for the write units a batch costs ------------------------------------------

def _value_size(value: dict) -> int:
    (kind, content), = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return (len(content.lstrip("-").replace(".", "").split("E")[0]) + 1) // 2 + 1
    if kind == "B":
        return len(content)
    if kind in ("SS", "NS"):
        return sum(len(str(element).encode()) for element in content)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(inner) + 1 for name, inner in content.items())
    if kind == "L":
        return 3 + sum(_value_size(inner) + 1 for inner in content)
    return 1  # BOOL, NULL


def item_size(item: dict) -> int:
    """The item's size as DynamoDB bills it (attribute names plus values), in bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())
