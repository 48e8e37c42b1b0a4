"""Commands report configuration problems as messages, not tracebacks, and exit 2.

The stack-file cases run the commands as a user does, in a copy of the project
with one more stack file: the project's own stack list stays as it is.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from policycheck import check
from harness.stack_config import CONFIG_ERROR_EXIT, PROJECT_DIR

# The commands as a user runs them (most in a process of their own), each through its whole run.
pytestmark = pytest.mark.e2e

TYPO_STACK = """\
config:
  aws:region: ap-southeast-1
  iot-sensor-pipeline:environmentSuffix: typo
  iot-sensor-pipeline:owner: iot-platform-team
  iot-sensor-pipeline:costCenter: manufacturing-rnd
  iot-sensor-pipeline:deletionProtection: false
  iot-sensor-pipeline:logRetentionDays: 45
  iot-sensor-pipeline:batchsize: 100
  iot-sensor-pipeline:logRetentionDay: 30
"""
EXPECTED_PROBLEMS = [
    "config `logRetentionDays` = 45 is not allowed: one of the values CloudWatch Logs accepts",
    "config `batchsize` is not a setting of this program: did you mean `batchSize`?",
    "config `logRetentionDay` is not a setting of this program: did you mean `logRetentionDays`?",
]


@pytest.fixture(scope="module")
def project_with_a_typo(tmp_path_factory):
    copy = tmp_path_factory.mktemp("project") / "p"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".local-run*", "__pycache__", "tests", "bench", "docs"))
    (copy / "Pulumi.typo.yaml").write_text(TYPO_STACK)
    return copy


def run(project, *command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=project, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


@pytest.mark.parametrize("command", [
    ("policycheck", "--stack", "typo", "--update"),
    ("local.run", "--stack", "typo", "--duration", "1", "--output", "results"),
])
def test_a_stack_file_problem_prints_every_problem_without_a_traceback_and_exits_2(project_with_a_typo, command):
    completed = run(project_with_a_typo, *command)
    assert completed.returncode == CONFIG_ERROR_EXIT, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    assert "the stack's configuration has problems:" in completed.stderr
    for problem in EXPECTED_PROBLEMS:
        assert problem in completed.stderr, completed.stderr


def test_the_local_run_stops_on_a_config_problem_before_making_a_run_folder(project_with_a_typo):
    run(project_with_a_typo, "local.run", "--stack", "typo", "--duration", "1", "--output", "stopped")
    assert not (project_with_a_typo / "stopped").exists()


def test_a_misspelled_policy_or_setting_names_the_closest_one_and_the_settings(tmp_path, capsys):
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"cloudwatch-log-group-retenton": "advisory",
                                  "cloudwatch-log-group-retention": {"minimumDay": 90, "maximumDays": "long"}}))
    with pytest.raises(SystemExit) as exited:
        check.main(["--stack", "dev", "--update", "--policy-pack-config", str(config)])
    assert exited.value.code == CONFIG_ERROR_EXIT
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("`cloudwatch-log-group-retenton` is not a policy of this pack: "
            "did you mean `cloudwatch-log-group-retention`?") in err
    assert ("cloudwatch-log-group-retention: `minimumDay` is not a setting of this policy: did you mean "
            "`minimumDays`? (its settings are maximumDays, minimumDays)") in err
    # Every problem at once: the bad value of a real setting too.
    assert "'long' is not of type 'integer' (setting `maximumDays`)" in err


def test_an_unreadable_pack_config_is_a_config_problem(tmp_path, capsys):
    config = tmp_path / "pack.json"
    config.write_text("{not json")
    with pytest.raises(SystemExit) as exited:
        check.main(["--stack", "dev", "--update", "--policy-pack-config", str(config)])
    assert exited.value.code == CONFIG_ERROR_EXIT
    assert f"--policy-pack-config {config}: Expecting property name" in capsys.readouterr().err


def test_the_check_says_how_many_resources_and_policies_it_checked(capsys):
    from pulumi.runtime.proto import analyzer_pb2

    from policycheck.analyzer import PolicyAnalyzer
    from harness.mocks import run_program
    from harness.stack_config import project_name

    check.main(["--stack", "dev", "--update", "--default-levels", "--json"])
    checked = json.loads(capsys.readouterr().out)["checked"]["update"]
    resources = check.analyzed_resources(run_program("dev"))
    with PolicyAnalyzer(project_name(), "dev", False) as analyzer:
        policies = [p.name for p in analyzer.info.policies if p.enforcementLevel != analyzer_pb2.DISABLED]
    assert checked == {"resources": len(resources), "policies": len(policies)}
    assert checked["resources"] > 50 and checked["policies"] > 40


@pytest.mark.parametrize("command", [
    ("local.inspect", "--device", "press-001", "--table", "sensor-metrics-dev"),
    ("operations.replay", "--bucket", "iot-sensor-data-dev", "--function", "iot-processor-dev", "--dry-run"),
])
def test_a_real_stack_command_without_credentials_says_so_in_one_line(tmp_path, command):
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("AWS_") or key in ("AWS_DEFAULT_REGION",)}
    environment.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                       AWS_EC2_METADATA_DISABLED="true")
    completed = subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_DIR, capture_output=True, text=True,
                               timeout=120, env=environment)
    assert completed.returncode == CONFIG_ERROR_EXIT, completed.stderr
    assert completed.stderr.splitlines() == [
        f"python -m {command[0]}: no AWS credentials found: run `aws configure` or `aws sso login`, or set "
        "AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"]
