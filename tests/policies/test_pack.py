"""The pack as a whole: what the engine learns from GetAnalyzerInfo, and the README's table."""

import re

import pytest

from policycheck.analyzer import LEVEL_NAMES, SEVERITY_NAMES
from harness.stack_config import PROJECT_DIR

# What teams reasonably tune, advisory by default; policies/README.md says why for each.
ADVISORY_BY_DEFAULT = {"dynamodb-table-deletion-protection", "s3-bucket-force-destroy-disabled",
                       "lambda-function-reserved-concurrency"}
SEVERITIES = {"low", "medium", "high", "critical"}


@pytest.mark.parametrize("field", ["description", "remediation_steps"])
def test_every_policy_describes_itself(analyzer, field):
    assert [p.name for p in analyzer.info.policies if not getattr(p, field).strip()] == []


def test_every_policy_has_a_severity_and_a_conventional_name(analyzer):
    bad = [p.name for p in analyzer.info.policies
           if SEVERITY_NAMES[p.severity] not in SEVERITIES or p.name.count("-") < 2 or p.name != p.name.lower()]
    assert bad == [], "expected <service>-<resource>-<rule> with a severity"


def test_encryption_and_public_access_are_mandatory_by_default(analyzer):
    levels = {p.name: LEVEL_NAMES[p.enforcementLevel] for p in analyzer.info.policies}
    must = [name for name in levels if name.endswith("customer-managed-key") or name in {
        "s3-bucket-public-access-block", "aws-policy-no-public-principal", "lambda-function-url-no-public-access",
        "lambda-permission-no-public-principal", "s3-bucket-policy-deny-insecure-transport"}]
    assert [name for name in must if levels[name] != "mandatory"] == []


def test_only_what_teams_tune_is_advisory_by_default(analyzer):
    levels = {p.name: LEVEL_NAMES[p.enforcementLevel] for p in analyzer.info.policies}
    assert sorted(name for name, level in levels.items() if level != "mandatory") == sorted(ADVISORY_BY_DEFAULT)


def test_readme_states_each_policys_default_level_and_why_advisory_ones_are(analyzer):
    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    rows = {match[0]: match[1] for match in re.findall(r"^\| `([a-z0-9-]+)`(?: \(stack\))? \|(?:[^|]*\|){3} (\w+) \|",
                                                       readme, re.MULTILINE)}
    levels = {p.name: LEVEL_NAMES[p.enforcementLevel] for p in analyzer.info.policies}
    assert {name: rows.get(name) for name in levels} == levels
    advisory_section = readme.split("## Advisory by default", 1)[-1].split("\n## ", 1)[0]
    assert [name for name in ADVISORY_BY_DEFAULT if f"`{name}`" not in advisory_section] == []


def test_readme_lists_every_policy(analyzer):
    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    assert [name for name in analyzer.policy_names if f"| `{name}`" not in readme] == []
