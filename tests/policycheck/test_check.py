"""The real program through the whole check: its own stacks pass, every injected
misconfiguration is caught by its intended policy, and the command behaves as documented.

End to end (the program under mocks, the pack over its protocol, as CI runs the check); each
policy on its own is tested by the fixture files in tests/policies/."""

import functools
import json
import re
from typing import Callable

import pytest

from policycheck import check
from harness.mocks import run_program
from policycheck.catalogue import MUTATIONS
from policycheck.injection import MutationResult, run_mutations
from policycheck.mutations import markdown_table
from harness.stack_config import PROJECT_DIR, stack_names
from tests.policies.test_pack import ADVISORY_BY_DEFAULT

pytestmark = pytest.mark.e2e

MODES = {"first-preview": True, "update": False}
LEVELS = {"shipped-config": False, "default-levels": True}
RESERVED_CONCURRENCY = "lambda-function-reserved-concurrency"


@pytest.fixture(scope="module")
def mutation_results() -> Callable[[str, str], list[MutationResult]]:
    """The catalogue's results on the dev stack per mode and levels, each run once for every test here."""
    @functools.cache
    def results(mode: str, levels: str) -> list[MutationResult]:
        return run_mutations(run_program("dev", preview=MODES[mode]), MUTATIONS, default_levels=LEVELS[levels])
    return results


@pytest.mark.parametrize("stack", stack_names())
@pytest.mark.parametrize("mode", list(MODES))
def test_program_stack_has_no_violation_under_its_policy_config(stack, mode):
    config = check.load_policy_config(check.default_policy_config(stack))
    result = check.check_stack(stack, MODES[mode], config)
    # Nothing but the one reminder the shipped configs keep advisory: they make
    # every other policy mandatory, and a "can't run policy" note would mean a
    # policy gave up on an unknown value.
    assert [f"{v.policy} on {v.urn}: {v.message}" for v in result.violations
            if (v.policy, v.level) != (RESERVED_CONCURRENCY, "advisory")] == []


@pytest.mark.parametrize("stack", stack_names())
@pytest.mark.parametrize("mode", list(MODES))
def test_program_stack_passes_the_default_levels(stack, mode):
    """What `pulumi preview --policy-pack policies` gives without a config file: only advisory notes,
    and only from the policies the README explains as advisory."""
    result = check.check_stack(stack, MODES[mode], {})
    assert [f"{v.policy} on {v.urn}: {v.message}" for v in result.mandatory] == []
    assert {v.policy for v in result.violations} <= ADVISORY_BY_DEFAULT


@pytest.mark.parametrize("levels", list(LEVELS))
@pytest.mark.parametrize("mode", list(MODES))
def test_every_applicable_mutation_is_caught_by_its_intended_policy(mutation_results, mode, levels):
    """With the stack's shipped config and with no config at all (the pack's default levels)."""
    results = mutation_results(mode, levels)
    applicable = [r for r in results if r.applicable]
    missed = [f"{r.mutation.name}: expected {r.mutation.policy}, mandatory violations: {r.reported}"
              for r in applicable if not r.caught]
    assert missed == []
    assert len(applicable) >= (len(MUTATIONS) if not MODES[mode] else 50)
    assert len({r.mutation.policy for r in applicable}) >= 40, "mutations exercise most policies"


def test_readme_mutation_table_is_the_current_result(mutation_results):
    readme = (PROJECT_DIR / "policies" / "README.md").read_text()
    table = markdown_table(mutation_results("update", "shipped-config"))
    assert table in readme, "rerun `python -m policycheck.mutations` and paste its table into policies/README.md"


def test_check_exits_zero_for_a_clean_stack_and_prints_json(capsys):
    assert check.main(["--stack", "dev", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mandatoryViolations"] == 0 and set(report["results"]) == {"preview", "update"}


@pytest.mark.parametrize("mode", list(MODES))
def test_a_stack_without_its_own_trail_passes_the_default_levels(mode):
    """auditTrail: none: no trail bucket; the archive still logs its requests, the log bucket is still exempt."""
    run = run_program("dev", preview=MODES[mode], config_overrides={"auditTrail": "none"})
    result = check.check_run(run, {})
    assert [f"{v.policy} on {v.urn}: {v.message}" for v in result.mandatory] == []


def test_check_runs_with_the_default_levels_on_request(capsys):
    assert check.main(["--stack", "dev", "--update", "--default-levels", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policyPackConfig"] is None
    assert {v["level"] for v in report["results"]["update"]} == {"advisory"}


def test_check_runs_one_mode_on_request(capsys):
    assert check.main(["--stack", "prod", "--preview", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["results"]) == {"preview"}


def test_check_rejects_an_unknown_stack(capsys):
    with pytest.raises(SystemExit) as exited:
        check.main(["--stack", "staging"])
    assert exited.value.code == 2
    assert "no stack file Pulumi.staging.yaml; stacks here: dev, prod" in capsys.readouterr().err


def test_check_rejects_a_policy_config_the_engine_would_refuse(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cloudwatch-log-group-retention": {"minimumDays": "a month"}}))
    with pytest.raises(SystemExit):
        check.main(["--stack", "dev", "--update", "--policy-pack-config", str(config)])
    assert "cloudwatch-log-group-retention: 'a month' is not of type 'integer'" in capsys.readouterr().err


def test_check_exits_one_and_names_policy_resource_and_property(tmp_path, capsys):
    stricter = tmp_path / "stricter.json"
    stricter.write_text(json.dumps({"all": "mandatory",
                                    "aws-resource-required-tags": {"requiredTags": ["DataClassification"]}}))
    assert check.main(["--stack", "dev", "--update", "--policy-pack-config", str(stricter)]) == 1
    output = capsys.readouterr().out
    assert re.search(r"\[mandatory\] \[severity: low\]  aws-resource-required-tags  "
                     r"\(aws:kinesis/stream:Stream: iot-dev-ingestion-stream\)", output)
    assert "tags is missing required keys: DataClassification" in output
