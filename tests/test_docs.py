"""The README's configuration table and Pulumi.yaml describe the keys the program reads."""

import re

from harness.stack_config import PROJECT_DIR, load_project

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


def _requirements(path) -> list[str]:
    """Every requirement line of a requirements file, following `-r` includes."""
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += _requirements(path.parent / line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def test_the_lock_pins_every_requirement_within_its_range():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = (PROJECT_DIR / "requirements.lock").read_text()
    pins = {canonicalize_name(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", lock, re.MULTILINE)}
    for line in _requirements(PROJECT_DIR / "requirements-local.txt"):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.lock lacks {requirement.name}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pins[name]}, outside {requirement.specifier}: "
            "run scripts/lock.sh")
    assert "--hash=sha256:" in lock, "the lock pins hashes: pip then refuses any other file"
