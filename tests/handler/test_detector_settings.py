"""One validator for detector settings: the program's preview and the function's cold start say the same."""

import json

import pulumi
import pytest

from handler import layout
from handler.detector_settings import DEFAULTS, DetectorSettings, DetectorSettingsError, validate
from handler.settings import SettingsError, load
from harness.mocks import run_program

ENVIRONMENT = {
    layout.ENV_METRICS_TABLE: "sensor-metrics-dev",
    layout.ENV_ARCHIVE_BUCKET: "iot-sensor-data-dev-x",
    layout.ENV_METRICS_TTL_DAYS: "30",
}

BAD = [
    ({"warmupReadings": 2.5},
     "`anomalyDetection.warmupReadings` = 2.5 is not allowed: a whole number from 20 to 100,000 (default 400)"),
    ({"warmupReadings": 300.0},
     "`anomalyDetection.warmupReadings` = 300.0 is not allowed: a whole number from 20 to 100,000 (default 400)"),
    ({"levelAlpha": 2},
     "`anomalyDetection.levelAlpha` = 2 is not allowed: a number greater than 0 and at most 1 (default 0.05)"),
    ({"spikeZ": "high"},
     '`anomalyDetection.spikeZ` = "high" is not allowed: a number from 2 to 1000 (default 9)'),
    ({"settleMs": True},
     "`anomalyDetection.settleMs` = true is not allowed: a whole number from 0 to 86,400,000 (default 30,000)"),
    ({"spikz": 5},
     "`anomalyDetection.spikz` is not a detector setting: did you mean spikeZ? known settings are warmupReadings,"),
    ({"typo": 1},
     "`anomalyDetection.typo` is not a detector setting: known settings are warmupReadings,"),
]


def test_empty_or_absent_settings_are_the_defaults():
    assert validate({}) == validate(None) == DetectorSettings()
    assert DetectorSettings()._asdict() == DEFAULTS


def test_good_settings_are_typed():
    settings = validate({"spikeZ": 7, "warmupReadings": 500})
    assert (settings.spikeZ, type(settings.spikeZ), settings.warmupReadings) == (7.0, float, 500)
    assert settings.levelZ == DEFAULTS["levelZ"]


@pytest.mark.parametrize("raw, message", BAD)
def test_a_bad_setting_names_key_value_and_what_is_allowed(raw, message):
    with pytest.raises(DetectorSettingsError) as raised:
        validate(raw)
    assert str(raised.value).startswith(message)


def test_every_problem_is_reported_together():
    with pytest.raises(DetectorSettingsError) as raised:
        validate({"alpha": 2, "typo": 1, "spikeZ": 0})
    assert [problem.split(" ")[0] for problem in raised.value.problems] == [
        "`anomalyDetection.alpha`", "`anomalyDetection.typo`", "`anomalyDetection.spikeZ`"]


def test_not_an_object_is_refused():
    with pytest.raises(DetectorSettingsError, match=r"`anomalyDetection` = \[1\] is not allowed: an object"):
        validate([1])


@pytest.mark.parametrize("raw, message", BAD[:1] + BAD[-1:])
def test_the_function_fails_its_cold_start_with_the_same_message(raw, message):
    with pytest.raises(SettingsError) as raised:
        load({**ENVIRONMENT, layout.ENV_ANOMALY_SETTINGS: json.dumps(raw)})
    assert str(raised.value).startswith(f"environment variable {layout.ENV_ANOMALY_SETTINGS}: {message}")


def test_the_program_fails_preview_with_the_same_message():
    # The case the issue reported: accepted by preview, refused by every invocation.
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config_overrides={"anomalyDetection": {"alpha": 2, "warmupReadings": 2.5}})
    text = str(raised.value)
    for problem in (
        "config `anomalyDetection.alpha` is not a detector setting: known settings are warmupReadings,",
        "config " + BAD[0][1],
    ):
        assert problem in text


def test_the_typed_settings_are_the_specified_ones_with_their_defaults():
    assert DetectorSettings._fields == tuple(DEFAULTS)
    assert DetectorSettings()._asdict() == DEFAULTS


@pytest.mark.parametrize("name", ["spikeZ", "warmupReadings"])
def test_a_boolean_is_not_a_number(name):
    with pytest.raises(DetectorSettingsError, match=f"`anomalyDetection.{name}` = true is not allowed"):
        validate({name: True})
