"""Pulumi.yaml, the README and docs/operations.md state the settings as components/config_table.py declares them."""

import re

from components import config_docs
from components.config_table import SETTINGS
from harness.stack_config import PROJECT_DIR, load_project

README = (PROJECT_DIR / "README.md").read_text()
RENDER = "run `.venv/bin/python -m components.config_docs` to render it from components/config_table.py"


def test_pulumi_yaml_config_block_is_the_one_rendered_from_the_table():
    assert config_docs.pulumi_yaml_config_as_written() == config_docs.pulumi_yaml_config(), (
        f"Pulumi.yaml's config block differs from the config table: {RENDER}")


def test_pulumi_yaml_declares_each_setting_with_the_tables_type_and_default():
    """What the CLI reads from Pulumi.yaml: a plain value for a provider key, else type, description, default."""
    declared = load_project()["config"]
    for setting in SETTINGS:
        if setting.provider:
            assert declared[setting.key] == setting.default, setting.key
        elif setting.kind == "object":
            assert setting.key not in declared, f"{setting.key}: Pulumi.yaml's schema has no object type"
        else:
            declaration = declared[setting.key]
            assert declaration["type"] == setting.kind, setting.key
            assert declaration["description"], setting.key
            if setting.required:
                assert "default" not in declaration, f"{setting.key} is required: no default"
            else:
                assert declaration["default"] == setting.default, setting.key
    assert set(declared) == {setting.key for setting in SETTINGS if setting.kind != "object"}


def test_readme_configuration_table_is_the_one_rendered_from_the_table():
    assert config_docs.readme_table_as_written() == config_docs.readme_table(), (
        f"README's configuration table differs from the config table: {RENDER}")
    table = config_docs.readme_table_as_written()
    assert [row.split("`")[1] for row in table.splitlines()[2:]] == [setting.key for setting in SETTINGS]


def test_operations_threshold_table_gives_each_alarm_settings_default_and_alarm():
    text = (PROJECT_DIR / "docs" / "operations.md").read_text()
    rows = re.findall(r"^\| `(alarm\w+)` \| (\d+)[^|]*\| `([a-z-]+)` \|", text, re.MULTILINE)
    documented = {key: (int(default), alarm) for key, default, alarm in rows}
    assert documented == {setting.key: (setting.default, setting.alarm) for setting in SETTINGS if setting.alarm}, (
        "docs/operations.md, Thresholds: each alarm setting's row gives its default and its alarm")


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
