"""The analyzer client's Configure: policy config reconciled as the engine does it."""

import pytest

from policycheck.analyzer import LEVEL_NAMES, PolicyConfigError, reconcile_policy_config


def reconciled(analyzer, config):
    result = reconcile_policy_config(config, analyzer.info.policies)
    return {name: (LEVEL_NAMES[entry.enforcementLevel], dict(entry.properties)) for name, entry in result.items()}


def test_a_policy_keeps_its_own_level_when_only_its_settings_are_configured(analyzer):
    result = reconciled(analyzer, {"cloudwatch-log-group-retention": {"minimumDays": 90}})
    assert result["cloudwatch-log-group-retention"] == ("mandatory", {"minimumDays": 90, "maximumDays": 3653})
    assert result["kinesis-stream-customer-managed-key"][0] == "mandatory"
    assert result["dynamodb-table-deletion-protection"][0] == "advisory"
    under_all = reconciled(analyzer, {"all": "advisory", "cloudwatch-log-group-retention": {"minimumDays": 90}})
    assert under_all["cloudwatch-log-group-retention"][0] == "advisory"


def test_all_sets_every_level_and_a_policy_entry_overrides_it(analyzer):
    result = reconciled(analyzer, {"all": "advisory", "s3-bucket-force-destroy-disabled": "disabled"})
    assert result["cloudtrail-trail-insights"][0] == "advisory"
    assert result["s3-bucket-force-destroy-disabled"][0] == "disabled"


@pytest.mark.parametrize("config, complaint", [
    ({"no-such-policy": "mandatory"}, "no-such-policy"),
    ({"all": "strict"}, "strict"),
    ({"cloudwatch-log-group-retention": {"minimumDays": "ninety"}}, "ninety"),
    ({"cloudwatch-log-group-retention": {"minimumDayz": 90}}, "minimumDayz"),
    ({"aws-resource-required-tags": {"requiredTags": "Owner"}}, "Owner"),
])
def test_a_config_the_engine_would_refuse_is_refused(analyzer, config, complaint):
    with pytest.raises(PolicyConfigError, match=complaint):
        reconcile_policy_config(config, analyzer.info.policies)
