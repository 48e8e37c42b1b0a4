"""Configuration is validated before any resource is declared: one message per problem,
naming the key, the bad value and what is allowed."""

import dataclasses
import re

import pulumi
import pytest

from components.config_table import BY_KEY, PROGRAM_SETTINGS, RULES, SETTINGS
from components.settings import PipelineSettings, read_settings
from harness.mocks import run_program
from harness.stack_config import PROJECT_DIR


def _error(overrides: dict) -> str:
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config_overrides=overrides)
    return str(raised.value)


@pytest.mark.parametrize("overrides, expected", [
    ({"environmentSuffix": "Dev_1"}, "config `environmentSuffix` = Dev_1 is not allowed: 1-16 lower-case"),
    ({"environmentSuffix": "a-very-long-environment"}, "config `environmentSuffix` = a-very-long-environment is not allowed"),
    ({"logRetentionDays": 45}, "config `logRetentionDays` = 45 is not allowed: one of the values CloudWatch Logs accepts: 1, 3, 5"),
    ({"batchSize": 20000}, "config `batchSize` = 20000 is not allowed: 1 to 10000 records"),
    ({"batchSize": "many"}, "config `batchSize` = many is not allowed: a whole number from 1 to 10000"),
    ({"archiveTransitionDays": -1}, "config `archiveTransitionDays` = -1 is not allowed: whole days from 0 (S3's minimum for GLACIER)"),
    ({"devices": ["press-404"]}, "config `devices[0]` = press-404 is not allowed: a device with a certificate signing request at devices/press-404.csr"),
    ({"devices": ["bad/name"]}, "config `devices[0]` = bad/name is not allowed: a device id matching"),
    ({"maximumRecordAgeSeconds": 90000}, "config `maximumRecordAgeSeconds` = 90000 is not allowed: at most the stream retention (86400 s)"),
    ({"maximumRetryAttempts": -1}, "config `maximumRetryAttempts` = -1 is not allowed: 0 to 10000 (-1, retry forever, stalls"),
    ({"kmsDeletionWindowDays": 3}, "config `kmsDeletionWindowDays` = 3 is not allowed: 7 to 30 days"),
    ({"archiveExpirationDays": 60}, "config `archiveExpirationDays` = 60 is not allowed: 0 (keep forever) or more than archiveTransitionDays (90)"),
    ({"alarmIteratorAgeMs": 3600000}, "config `alarmIteratorAgeMs` = 3600000 is not allowed: less than maximumRecordAgeSeconds (3600000 ms)"),
    ({"iotLogLevel": "LOUD"}, "config `iotLogLevel` = LOUD is not allowed: one of DEBUG, INFO, ERROR, WARN, DISABLED"),
    ({"sensorLimits": {"temperature": {"low": 10, "high": 5}}}, "config `sensorLimits.temperature`"),
    ({"forceDestroy": "yes"}, "config `forceDestroy` = yes is not allowed: true or false"),
    ({"owner": None}, "config `owner` is required: set it with `pulumi config set owner <value>`"),
])
def test_bad_config_fails_preview_naming_key_value_and_allowed(overrides, expected):
    assert expected in _error(overrides)


@pytest.mark.parametrize("overrides, key, allowed", [
    # `$` would accept a final newline.
    ({"environmentSuffix": "dev\n"}, "environmentSuffix", "1-16 lower-case"),
    ({"sensorLimits": {"temperature\n": {"low": 0, "high": 5}}}, "sensorLimits.temperature\n", "a sensor name matching"),
    # S3 rejects a noncurrent-version expiration at or before the noncurrent transition.
    ({"archiveTransitionDays": 0, "archiveNoncurrentTransitionDays": 200, "archiveExpirationDays": 180},
     "archiveExpirationDays", "0 (keep forever) or more than archiveNoncurrentTransitionDays (200)"),
    ({"deletionProtection": True, "alarmEmails": []}, "alarmEmails",
     "at least one address with deletionProtection: true"),
    ({"tracing": "On"}, "tracing", "Active (X-Ray traces every invocation) or PassThrough (no tracing)"),
    ({"reservedConcurrency": 0}, "reservedConcurrency",
     "-1 (no reservation: share the account's unreserved concurrency), or from parallelizationFactor (1) to 1000"),
    ({"parallelizationFactor": 4, "reservedConcurrency": 3}, "reservedConcurrency",
     "-1 (no reservation: share the account's unreserved concurrency), or from parallelizationFactor (4) to "
     "1000; the mapping needs shards x parallelizationFactor"),
    ({"reservedConcurrency": -2}, "reservedConcurrency", "-1 (no reservation"),
])
def test_bad_value_is_refused_naming_the_key_and_what_is_allowed(overrides, key, allowed):
    message = _error(overrides)
    assert message.count("  - config `") == 1, message
    assert f"  - config `{key}` = " in message and f"is not allowed: {allowed}" in message, message


@pytest.mark.parametrize("misspelled, declared", [
    ("batchsize", "batchSize"),
    ("logRetentionDay", "logRetentionDays"),
    ("archiveTransitonDays", "archiveTransitionDays"),
    ("alarmEmail", "alarmEmails"),
])
def test_a_misspelled_key_is_refused_naming_the_closest_declared_key(misspelled, declared):
    # Left alone, the misspelled key would be ignored and the declared key's default deployed.
    assert (f"config `{misspelled}` is not a setting of this program: did you mean `{declared}`?"
            in _error({misspelled: 30}))


def test_an_unknown_key_with_no_close_match_points_to_the_list_of_keys():
    assert ("config `colour` is not a setting of this program: the README's Configuration table lists every key"
            in _error({"colour": "blue"}))


def test_a_value_prints_as_written_and_quoted_only_when_it_needs_it():
    message = _error({"iotLogLevel": "", "alarmEmails": ["not-an-address"], "environmentSuffix": "dev "})
    assert "config `iotLogLevel` = \"\" is not allowed" in message
    assert "config `alarmEmails` = [\"not-an-address\"] is not allowed" in message
    assert "config `environmentSuffix` = \"dev \" is not allowed" in message


def test_every_problem_is_reported_at_once():
    message = _error({"batchSize": 0, "logRetentionDays": 2})
    assert "`batchSize`" in message and "`logRetentionDays`" in message


def test_expiration_after_both_transitions_is_accepted(program_run):
    run = program_run("dev", config_overrides={"archiveNoncurrentTransitionDays": 179, "archiveExpirationDays": 180})
    assert run.resources


def test_protected_stack_with_an_alarm_address_is_accepted(prod):
    assert prod.config["iot-sensor-pipeline:deletionProtection"] == "true"
    assert prod.config["iot-sensor-pipeline:alarmEmails"] == '["oncall@example.com"]'
    subscription = prod.one("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "oncall@example.com")


# The table itself: one declaration per key drives the reader, the messages and PipelineSettings.
# The dev stack's values that other settings' messages name (reservedConcurrency's parallelizationFactor).
_DEV_VALUES = {"parallelizationFactor": 1}

def _only_required(key: str):
    # A protected stack (deletionProtection's default) needs an alarm address too.
    return {"environmentSuffix": "dev", "owner": "team", "costCenter": "cc",
            "alarmEmails": '["ops@example.com"]'}.get(key)


def test_pipeline_settings_has_one_attribute_per_setting_of_the_table():
    fields = {item.name for item in dataclasses.fields(PipelineSettings)}
    assert fields == {setting.program_attribute for setting in PROGRAM_SETTINGS}


def test_the_tables_defaults_are_allowed_by_the_table():
    settings = read_settings(_only_required, PROJECT_DIR)
    for setting in PROGRAM_SETTINGS:
        if setting.required or setting.convert is not None:
            continue
        assert getattr(settings, setting.program_attribute) == setting.default, setting.key
    assert (settings.devices, settings.reserved_concurrency, settings.sensor_limits) == ((), None, {})


@pytest.mark.parametrize("setting", [s for s in PROGRAM_SETTINGS if s.kind == "integer" and not s.choices],
                         ids=lambda s: s.key)
def test_an_integer_above_its_bound_is_refused_with_the_tables_message(setting):
    too_high = setting.high + 1
    message = _error({setting.key: too_high})
    expected = f"config `{setting.key}` = {too_high} is not allowed: {setting.allowed_text(_DEV_VALUES)}"
    assert expected in message, message


def test_every_allowed_text_is_filled_in():
    for setting in SETTINGS:
        assert not re.search(r"\{[A-Za-z]\w*\}", setting.allowed_text(_DEV_VALUES)), setting.key
        assert setting.description, setting.key


def test_each_rule_reports_on_a_declared_setting_and_names_it_when_broken():
    """A rule's key is where a broken condition is reported: it must be a key a user can set."""
    assert {rule.key for rule in RULES} <= set(BY_KEY), {rule.key for rule in RULES} - set(BY_KEY)
    broken = {
        "archiveExpirationDays": {"archiveExpirationDays": 60},
        "auditExpirationDays": {"auditExpirationDays": 60},
        "maximumRecordAgeSeconds": {"maximumRecordAgeSeconds": 90000},
        "reservedConcurrency": {"parallelizationFactor": 2, "reservedConcurrency": 1},
        "alarmEmails": {"deletionProtection": True},
        "auditObjectLockMode": {"auditTrail": "none", "auditObjectLockMode": "GOVERNANCE"},
        "auditObjectLockDays": {"auditObjectLockMode": "GOVERNANCE", "auditObjectLockDays": 400},
        "alarmIteratorAgeMs": {"alarmIteratorAgeMs": 3600000},
    }
    assert set(broken) == {rule.key for rule in RULES}, "one broken configuration per rule"
    for key, overrides in broken.items():
        assert f"  - config `{key}` = " in _error(overrides), key
