"""The program's own stacks pass; every injected misconfiguration is caught by its intended policy."""

import json

import pytest

from offline import policy_check
from offline.mutations import run_mutations
from offline.stack_config import stack_names


@pytest.mark.parametrize("stack", stack_names())
@pytest.mark.parametrize("preview", [True, False], ids=["first-preview", "update"])
def test_program_stack_has_no_violation_under_its_policy_config(stack, preview):
    config = json.loads(policy_check.default_policy_config(stack).read_text())
    violations = policy_check.check_stack(stack, preview, config)
    assert [(v.policy, v.urn, v.message) for v in violations] == []


@pytest.mark.parametrize("preview", [True, False], ids=["first-preview", "update"])
def test_every_applicable_mutation_is_caught_by_its_intended_policy(preview):
    results = run_mutations("dev", preview=preview)
    applicable = [r for r in results if r.applicable]
    assert len(applicable) >= 30
    missed = [(r.mutation.name, r.mutation.policy, r.reported) for r in applicable if not r.caught]
    assert missed == []
    if not preview:
        assert len(applicable) == len(results), "in an update every property is known"


def test_check_command_exits_zero_for_a_clean_stack_and_prints_json(capsys):
    assert policy_check.main(["--stack", "dev", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mandatoryViolations"] == 0 and set(report["results"]) == {"preview", "update"}


def test_check_command_rejects_an_unknown_stack(capsys):
    with pytest.raises(SystemExit) as exited:
        policy_check.main(["--stack", "staging"])
    assert exited.value.code == 2
    assert "no stack file Pulumi.staging.yaml" in capsys.readouterr().err


def test_check_command_exits_one_on_a_mandatory_violation(tmp_path, capsys):
    stricter = tmp_path / "stricter.json"
    stricter.write_text(json.dumps({"all": "mandatory",
                                    "aws-resource-required-tags": {"requiredTags": ["DataClassification"]}}))
    assert policy_check.main(["--stack", "dev", "--mode", "update", "--policy-pack-config", str(stricter)]) == 1
    output = capsys.readouterr().out
    assert "[mandatory]  aws-resource-required-tags" in output
    assert "missing or empty required tags: DataClassification" in output


def test_readme_lists_every_policy():
    from offline.analyzer import PolicyAnalyzer
    from offline.stack_config import PROJECT_DIR, project_name

    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    with PolicyAnalyzer(project_name(), "docs", preview=False) as analyzer:
        missing = [name for name in analyzer.policy_names if f"| `{name}`" not in readme]
    assert missing == []
