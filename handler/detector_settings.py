"""The detector's settings: their names, defaults, allowed ranges, and the one validator.

A contract module like `message_format.py` and `layout.py`: standard library
only, no environment. The Pulumi program validates the stack's
`anomalyDetection` with `validate` before it declares any resource, and the
processor validates the same JSON (its `ANOMALY_SETTINGS_JSON`) with the same
function at cold start, so a value `pulumi preview` accepts is a value the
function starts with, and both report a bad one with the same words.

Names are the program's camelCase, as written in the stack's config.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

# name -> (default, low, high, meaning). Integers are counts, floats are
# weights (0 < w < 1), thresholds or ratios. One set of defaults for every
# machine: see docs/processor.md#detection for how they were chosen and measured.
_SPECS = {
    "warmupReadings": (400, 20, 100_000,
                       "readings of a sensor learned as its normal behaviour before it is scored "
                       "(hard limits apply from the first reading)"),
    "baselineAlpha": (0.002, 1e-6, 0.5,
                      "weight of a normal reading in the slow baseline (level and spread) of a sensor and of "
                      "the joint model"),
    "levelAlpha": (0.05, 1e-4, 1.0,
                   "weight of a reading in the short-term level that level shifts and drift are read from"),
    "spikeZ": (9.0, 2.0, 1000.0,
               "distance of a reading from the short-term level, in the sensor's own reading-to-reading "
               "spreads, that is a spike"),
    "levelZ": (5.0, 1.0, 1000.0,
               "distance of the short-term level from the baseline, in its own normal spreads, that is a level "
               "shift (the level got there abruptly)"),
    "driftZ": (6.0, 1.0, 1000.0,
               "the same distance that is a drift (the level crept there): higher than levelZ by default, since "
               "real processes creep within their normal wander far more often than they jump; also the level's "
               "distance from the readings' long-run mean, in their long-run spreads, that is a drift"),
    "varianceRatio": (20.0, 1.5, 1e6,
                      "ratio of the short-term to the normal reading-to-reading variance that is a variance change"),
    "jointZ": (5.0, 1.0, 1000.0,
               "joint (multivariate) score of the device's sensors, in standard normal units, that is anomalous"),
    "stuckReadings": (30, 3, 1_000_000,
                      "identical consecutive readings that can mean a stuck sensor"),
    "stuckFactor": (3.0, 1.0, 1000.0,
                    "how many times longer than the longest run of identical values seen in normal operation a "
                    "run must be to be stuck (so quantised and constant sensors do not fire)"),
    "settleReadings": (30, 1, 100_000,
                       "normal readings after which an open episode closes (together with settleMs)"),
    "settleMs": (30_000, 0, 86_400_000,
                 "milliseconds of normal readings after which an open episode closes (together with "
                 "settleReadings)"),
}

DEFAULTS: dict[str, int | float] = {name: spec[0] for name, spec in _SPECS.items()}
MEANINGS: dict[str, str] = {name: spec[3] for name, spec in _SPECS.items()}
CONFIG_KEY = "anomalyDetection"


def _whole(name: str) -> int:
    default = _SPECS[name][0]
    assert isinstance(default, int), name
    return default


def _number(name: str) -> float:
    default = _SPECS[name][0]
    assert isinstance(default, float), name
    return default


class DetectorSettings(NamedTuple):
    """The detector's settings, validated; the Detector takes this. Defaults and meanings: _SPECS
    (the fields are its names, in its order: tests/handler/test_detector_settings.py checks it)."""

    warmupReadings: int = _whole("warmupReadings")
    baselineAlpha: float = _number("baselineAlpha")
    levelAlpha: float = _number("levelAlpha")
    spikeZ: float = _number("spikeZ")
    levelZ: float = _number("levelZ")
    driftZ: float = _number("driftZ")
    varianceRatio: float = _number("varianceRatio")
    jointZ: float = _number("jointZ")
    stuckReadings: int = _whole("stuckReadings")
    stuckFactor: float = _number("stuckFactor")
    settleReadings: int = _whole("settleReadings")
    settleMs: int = _whole("settleMs")


class DetectorSettingsError(ValueError):
    """Detector settings that cannot be used. `problems` lists each one; the message joins them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def _as_written(value: object) -> str:
    """The value as it appears in the stack's config (JSON), not as Python prints it."""
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _problem(name: str, value: object, allowed: str) -> str:
    return f"`{CONFIG_KEY}.{name}` = {_as_written(value)} is not allowed: {allowed}"


def _allowed(name: str) -> str:
    default, low, high, _ = _SPECS[name]
    if isinstance(default, int):
        return f"a whole number from {low:,} to {high:,} (default {default:,})"
    if high < 1.0 or name.endswith("Alpha"):
        return f"a number greater than 0 and at most {high:g} (default {default:g})"
    return f"a number from {low:g} to {high:g} (default {default:g})"


def _check(name: str, value: object) -> str | None:
    default, low, high, _ = _SPECS[name]
    if isinstance(default, int):
        # JSON has one number type: 2.5 is not silently truncated, and 3.0 is not guessed to mean 3.
        ok = type(value) is int and low <= value <= high
    else:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and (0 < value <= high if name.endswith("Alpha") else low <= value <= high))
    return None if ok else _problem(name, value, _allowed(name))


def validate(raw: object) -> DetectorSettings:
    """Detector settings from the stack's `anomalyDetection` object (None or {} for the defaults).

    Raises DetectorSettingsError listing every problem: the key, the value as
    written and what is allowed, with a suggestion for a misspelled key.
    """
    if raw is None:
        return DetectorSettings()
    if not isinstance(raw, dict):
        raise DetectorSettingsError([
            f"`{CONFIG_KEY}` = {_as_written(raw)} is not allowed: an object of setting name to number, "
            f"with settings among {', '.join(DEFAULTS)}"])
    problems: list[str] = []
    values: dict[str, Any] = {}  # each checked against its spec above
    for name, value in raw.items():
        if name not in _SPECS:
            import difflib  # only a misspelled setting needs it: kept out of the handler's cold start

            close = difflib.get_close_matches(str(name), list(_SPECS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"`{CONFIG_KEY}.{name}` is not a detector setting: {hint}known settings are "
                            f"{', '.join(DEFAULTS)}")
            continue
        problem = _check(name, value)
        if problem:
            problems.append(problem)
        else:
            values[name] = value if isinstance(DEFAULTS[name], int) else float(value)
    if problems:
        raise DetectorSettingsError(problems)
    return DetectorSettings(**values)
