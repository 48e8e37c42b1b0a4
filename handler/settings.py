"""The processor's settings, read once from the environment the program sets.

A missing or malformed variable fails the cold start with a message that names
the variable, what it held and what is allowed, instead of failing every record.
"""

from __future__ import annotations

import json
import math
from collections import namedtuple

from handler import layout
from handler.detector_settings import DetectorSettings, DetectorSettingsError
from handler.detector_settings import validate as validate_detector_settings
from handler.message_format import KNOWN_SENSORS, SENSOR_NAME_PATTERN

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from collections.abc import Mapping


class SettingsError(RuntimeError):
    """The function's environment is not one the processor can run with."""


ProcessorSettings = namedtuple("ProcessorSettings", ["table_name", "bucket_name", "ttl_days", "sensor_limits",
                                                     "detector", "metrics_namespace"])


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is missing or empty; the Pulumi program sets it")
    return value


def _json_object(environ: Mapping[str, str], name: str) -> dict:
    raw = environ.get(name, "").strip() or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SettingsError(f"environment variable {name} is not JSON ({error}): {raw[:200]!r}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"environment variable {name} must be a JSON object, not {type(value).__name__}")
    return value


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sensor_limits(environ: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    limits = {name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()}
    for sensor, bounds in _json_object(environ, layout.ENV_SENSOR_LIMITS).items():
        if not SENSOR_NAME_PATTERN.match(sensor):
            raise SettingsError(
                f"{layout.ENV_SENSOR_LIMITS}: sensor {sensor!r} must match {SENSOR_NAME_PATTERN.pattern}"
            )
        if not (isinstance(bounds, dict) and _finite_number(bounds.get("low")) and _finite_number(bounds.get("high"))
                and bounds["low"] < bounds["high"]):
            raise SettingsError(
                f"{layout.ENV_SENSOR_LIMITS}: {sensor} = {bounds!r}; expected {{\"low\": n, \"high\": m}} with low < high"
            )
        limits[sensor] = (float(bounds["low"]), float(bounds["high"]))
    return limits


def _detector(environ: Mapping[str, str]) -> DetectorSettings:
    # The same validator as the program's `anomalyDetection` check, so both say the same.
    try:
        return validate_detector_settings(_json_object(environ, layout.ENV_ANOMALY_SETTINGS))
    except DetectorSettingsError as error:
        raise SettingsError(f"environment variable {layout.ENV_ANOMALY_SETTINGS}: {error}") from None


def load(environ: Mapping[str, str]) -> ProcessorSettings:
    """Read and validate the processor's settings from `environ`."""
    ttl_raw = _require(environ, layout.ENV_METRICS_TTL_DAYS)
    if not (ttl_raw.isascii() and ttl_raw.isdigit()) or not 1 <= int(ttl_raw) <= 36500:
        raise SettingsError(f"environment variable {layout.ENV_METRICS_TTL_DAYS} = {ttl_raw!r}; expected whole days 1-36500")
    return ProcessorSettings(
        table_name=_require(environ, layout.ENV_METRICS_TABLE),
        bucket_name=_require(environ, layout.ENV_ARCHIVE_BUCKET),
        ttl_days=int(ttl_raw),
        sensor_limits=_sensor_limits(environ),
        detector=_detector(environ),
        metrics_namespace=environ.get(layout.ENV_METRICS_NAMESPACE, "").strip() or layout.METRICS_NAMESPACE,
    )
