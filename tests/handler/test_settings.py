"""A bad environment fails the cold start with a message naming the variable."""

import pytest

from handler import layout
from handler.settings import SettingsError, load

GOOD = {
    layout.ENV_METRICS_TABLE: "sensor-metrics-dev",
    layout.ENV_ARCHIVE_BUCKET: "iot-sensor-data-dev-x",
    layout.ENV_METRICS_TTL_DAYS: "30",
    layout.ENV_SENSOR_LIMITS: '{"temperature": {"low": -10, "high": 90}}',
    layout.ENV_ANOMALY_SETTINGS: '{"spikeZ": 5, "stuckReadings": 10}',
}


def test_good_environment_loads_with_overrides():
    settings = load(GOOD)
    assert settings.table_name == "sensor-metrics-dev"
    assert settings.sensor_limits["temperature"] == (-10.0, 90.0)
    assert settings.sensor_limits["humidity"] == (0.0, 100.0)
    assert (settings.detector.spikeZ, settings.detector.stuckReadings) == (5.0, 10)


@pytest.mark.parametrize("change, message", [
    ({layout.ENV_METRICS_TABLE: ""}, "METRICS_TABLE_NAME is missing or empty"),
    ({layout.ENV_ARCHIVE_BUCKET: None}, "ARCHIVE_BUCKET_NAME is missing or empty"),
    ({layout.ENV_METRICS_TTL_DAYS: "thirty"}, "METRICS_TTL_DAYS = 'thirty'; expected whole days"),
    ({layout.ENV_METRICS_TTL_DAYS: "3\u00b2"}, "METRICS_TTL_DAYS = '3\u00b2'; expected whole days"),
    ({layout.ENV_SENSOR_LIMITS: "{"}, "SENSOR_LIMITS_JSON is not JSON"),
    ({layout.ENV_SENSOR_LIMITS: '{"temperature": {"low": 5, "high": 1}}'}, "SENSOR_LIMITS_JSON: temperature"),
    ({layout.ENV_ANOMALY_SETTINGS: '{"spike": 3}'}, "ANOMALY_SETTINGS_JSON: `anomalyDetection.spike` is not a detector"),
    ({layout.ENV_ANOMALY_SETTINGS: '{"levelAlpha": 2}'}, "`anomalyDetection.levelAlpha` = 2 is not allowed"),
    ({layout.ENV_ANOMALY_SETTINGS: '[1]'}, "ANOMALY_SETTINGS_JSON must be a JSON object"),
])
def test_bad_environment_names_the_variable(change, message):
    environ = {**GOOD, **change}
    environ = {key: value for key, value in environ.items() if value is not None}
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(environ)
