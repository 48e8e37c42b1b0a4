"""DynamoDB items of the metrics table, in the low-level attribute-value format. Pure.

Key layout in handler/layout.py. Every value in an item is derived from the
data (TTLs count from the data's own time, not the processing time), so
storing the same readings again yields the same items.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

from handler import layout
from handler.aggregation import SensorStats, Window
from handler.detection import Anomaly, DeviceState, SensorState
from handler.quarantine import EMPTY_LEDGER, Ledger

SEP = layout.SORT_KEY_SEPARATOR
# The partition of a shard's bookkeeping: `/` cannot occur in a device id.
SHARD_PARTITION_PREFIX = "_shard/"
QUARANTINE_LEDGER_SORT_KEY = "quarantine"


def iso_ms(timestamp_ms: int) -> str:
    """Fixed-width UTC ISO 8601 with milliseconds: sorts chronologically as text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp_ms // 1000)) + f".{timestamp_ms % 1000:03d}Z"


# DynamoDB numbers cannot be closer to zero than 1E-130 (AWS rejects the item;
# moto does not): a float that small is stored as 0 (the archive keeps it exact).
_SMALLEST_STORED_MAGNITUDE = 1e-120


def number(value: float | int) -> dict:
    # str(Decimal(repr(x))) is exact for the float's shortest repr and uses the
    # exponent form DynamoDB accepts.
    if isinstance(value, int):
        return {"N": str(value)}
    if -_SMALLEST_STORED_MAGNITUDE < value < _SMALLEST_STORED_MAGNITUDE:
        value = 0.0
    return {"N": str(Decimal(repr(value)))}


def key(partition: str, sort_key: str) -> dict:
    return {layout.TABLE_PARTITION_KEY: {"S": partition}, layout.TABLE_SORT_KEY: {"S": sort_key}}


def window_key(device_id: str, start_ms: int) -> dict:
    return key(device_id, f"{iso_ms(start_ms)}{SEP}{layout.METRICS_SORT_KEY_SUFFIX}")


def state_key(device_id: str) -> dict:
    return key(device_id, layout.STATE_SORT_KEY)


def ledger_key(shard_id: str) -> dict:
    return key(SHARD_PARTITION_PREFIX + shard_id, QUARANTINE_LEDGER_SORT_KEY)


def _expires_at(timestamp_ms: int, ttl_days: int) -> dict:
    return number(timestamp_ms // 1000 + ttl_days * 86_400)


def window_item(device_id: str, window: Window, ttl_days: int) -> dict:
    sensors = {
        name: {"M": {
            "count": number(stats.count),
            "sum": number(stats.total),
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
        "reading_count": number(len(window.seen)),
        "sensors": {"M": sensors},
        "seen_timestamps_ms": {"NS": [str(ts) for ts in sorted(window.seen)]},
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(window.start_ms, ttl_days),
    })
    return item


def parse_window(item: dict, start_ms: int) -> Window:
    window = Window(start_ms=start_ms, seen={int(ts) for ts in item.get("seen_timestamps_ms", {}).get("NS", [])})
    for name, attribute in item.get("sensors", {}).get("M", {}).items():
        stats = attribute["M"]
        window.sensors[name] = SensorStats(
            count=int(stats["count"]["N"]),
            total=float(stats["sum"]["N"]),
            minimum=float(stats["min"]["N"]),
            maximum=float(stats["max"]["N"]),
            last=float(stats["last"]["N"]),
            last_timestamp_ms=int(stats["last_timestamp_ms"]["N"]),
        )
    return window


def anomaly_item(anomaly: Anomaly, ttl_days: int) -> dict:
    sort_key = SEP.join((iso_ms(anomaly.timestamp_ms), layout.ANOMALY_SORT_KEY_TAG, anomaly.sensor, anomaly.kind))
    item = key(anomaly.device_id, sort_key)
    item.update({
        "item_type": {"S": "anomaly"},
        "sensor": {"S": anomaly.sensor},
        "kind": {"S": anomaly.kind},
        "timestamp": {"S": iso_ms(anomaly.timestamp_ms)},
        "timestamp_ms": number(anomaly.timestamp_ms),
        "value": number(anomaly.value),
        "expected_low": number(anomaly.expected_low),
        "expected_high": number(anomaly.expected_high),
        "score": number(round(anomaly.score, 6)),
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(anomaly.timestamp_ms, ttl_days),
    })
    return item


def state_item(device_id: str, state: DeviceState, ttl_days: int) -> dict:
    # Detector state is only ever read back whole: one compact JSON attribute.
    detector = {name: sensor.to_list() for name, sensor in sorted((state.sensors or {}).items())}
    item = state_key(device_id)
    item.update({
        "item_type": {"S": "state"},
        "last_timestamp_ms": number(state.last_timestamp_ms),
        "detector": {"S": json.dumps(detector, separators=(",", ":"), allow_nan=True)},
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(state.last_timestamp_ms, ttl_days),
    })
    return item


def parse_state(item: dict | None) -> DeviceState:
    if not item:
        return DeviceState()
    sensors = {name: SensorState.from_list(values) for name, values in json.loads(item["detector"]["S"]).items()}
    return DeviceState(last_timestamp_ms=int(item["last_timestamp_ms"]["N"]), sensors=sensors)


def ledger_item(shard_id: str, ledger: Ledger, ttl_days: int) -> dict:
    item = ledger_key(shard_id)
    item.update({
        "item_type": {"S": "quarantine_ledger"},
        # A string: Kinesis sequence numbers have 56 digits, beyond a DynamoDB number's 38.
        "max_sequence_number": {"S": str(ledger.max_sequence)},
        "fingerprints": {"S": " ".join(ledger.fingerprints)},
        "arrival_ms": number(ledger.arrival_ms),
        layout.TABLE_TTL_ATTRIBUTE: _expires_at(ledger.arrival_ms, ttl_days),
    })
    return item


def parse_ledger(item: dict | None) -> Ledger:
    if not item:
        return EMPTY_LEDGER
    return Ledger(max_sequence=int(item["max_sequence_number"]["S"]),
                  fingerprints=tuple(item.get("fingerprints", {}).get("S", "").split()),
                  arrival_ms=int(item.get("arrival_ms", {}).get("N", "0")))
