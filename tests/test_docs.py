"""The README's configuration table and Pulumi.yaml describe the keys the program reads."""

import re

from offline.stack_config import PROJECT_DIR, load_project

README = (PROJECT_DIR / "README.md").read_text()
SETTINGS_SOURCE = (PROJECT_DIR / "components" / "settings.py").read_text()
# Keys that hold objects: Pulumi.yaml cannot declare them (its schema has no object type).
STRUCTURED_KEYS = {"sensorLimits", "anomalyDetection"}


def _keys_read_by_program() -> set[str]:
    keys = set(re.findall(r'reader\.\w+\(\s*"(\w+)"', SETTINGS_SOURCE))
    keys |= set(re.findall(r'^\s*"(alarm\w+)": "\w+",$', SETTINGS_SOURCE, re.MULTILINE))
    return keys


def test_program_reads_keys():
    assert {"environmentSuffix", "batchSize", "devices", "alarmIteratorAgeMs"} <= _keys_read_by_program()


def test_every_key_read_is_declared_in_pulumi_yaml():
    declared = set((load_project().get("config") or {}))
    missing = _keys_read_by_program() - declared - STRUCTURED_KEYS
    assert missing == set(), f"declare these in Pulumi.yaml with type, description and default: {sorted(missing)}"


def test_every_declared_key_is_read_and_typed():
    for key, declaration in load_project()["config"].items():
        if ":" in key:
            continue
        assert key in _keys_read_by_program(), f"Pulumi.yaml declares {key}, which the program never reads"
        assert declaration.get("type") in {"string", "integer", "boolean", "array"}, key
        assert declaration.get("description"), f"{key} has no description"


def test_every_key_is_in_the_readme_table():
    table = README.split("## Configuration", 1)[1].split("## Architecture", 1)[0]
    for key in _keys_read_by_program():
        if key.startswith("alarm") and key != "alarmEmails":
            continue  # the thresholds share one row and are listed in docs/operations.md
        assert f"`{key}`" in table, f"README configuration table lacks {key}"


def test_readme_opens_with_the_local_run_and_the_test_command():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "./run-local.sh" in first_block and "./run-tests.sh" in first_block
    assert "run-tests.sh" in (PROJECT_DIR / ".ci" / "run").read_text()
