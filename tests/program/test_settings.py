"""Configuration is validated before any resource is declared: one message per problem,
naming the key, the bad value and what is allowed."""

import pulumi
import pytest

from offline.mocks import run_program


def _error(overrides: dict) -> str:
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config_overrides=overrides)
    return str(raised.value)


@pytest.mark.parametrize("overrides, expected", [
    ({"environmentSuffix": "Dev_1"}, "config `environmentSuffix` = 'Dev_1' is not allowed: 1-16 lower-case"),
    ({"environmentSuffix": "a-very-long-environment"}, "config `environmentSuffix` = 'a-very-long-environment'"),
    ({"logRetentionDays": 45}, "config `logRetentionDays` = '45' is not allowed: one of the values CloudWatch Logs accepts: 1, 3, 5"),
    ({"batchSize": 20000}, "config `batchSize` = 20000 is not allowed: 1 to 10000 records"),
    ({"batchSize": "many"}, "config `batchSize` = 'many' is not allowed: a whole number from 1 to 10000"),
    ({"archiveTransitionDays": -1}, "config `archiveTransitionDays` = -1 is not allowed: whole days from 0 (S3's minimum for GLACIER)"),
    ({"devices": ["press-404"]}, "config `devices[0]` = 'press-404' is not allowed: a device with a certificate signing request at devices/press-404.csr"),
    ({"devices": ["bad/name"]}, "config `devices[0]` = 'bad/name' is not allowed: a device id matching"),
    ({"maximumRecordAgeSeconds": 90000}, "config `maximumRecordAgeSeconds` = 90000 is not allowed: at most the stream retention (86400 s)"),
    ({"maximumRetryAttempts": -1}, "config `maximumRetryAttempts` = -1 is not allowed: 0 to 10000 (-1, retry forever, stalls"),
    ({"kmsDeletionWindowDays": 3}, "config `kmsDeletionWindowDays` = 3 is not allowed: 7 to 30 days"),
    ({"archiveExpirationDays": 60}, "config `archiveExpirationDays` = 60 is not allowed: 0 (keep forever) or more than archiveTransitionDays (90)"),
    ({"alarmIteratorAgeMs": 3600000}, "config `alarmIteratorAgeMs` = 3600000 is not allowed: less than maximumRecordAgeSeconds (3600000 ms)"),
    ({"iotLogLevel": "LOUD"}, "config `iotLogLevel` = 'LOUD' is not allowed: one of DEBUG, INFO, ERROR, WARN, DISABLED"),
    ({"sensorLimits": {"temperature": {"low": 10, "high": 5}}}, "config `sensorLimits.temperature`"),
    ({"forceDestroy": "yes"}, "config `forceDestroy` = 'yes' is not allowed: true or false"),
    ({"owner": None}, "config `owner` is required: set it with `pulumi config set owner <value>`"),
])
def test_bad_config_fails_preview_naming_key_value_and_allowed(overrides, expected):
    assert expected in _error(overrides)


def test_every_problem_is_reported_at_once():
    message = _error({"batchSize": 0, "logRetentionDays": 2})
    assert "`batchSize`" in message and "`logRetentionDays`" in message

