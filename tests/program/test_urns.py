"""No resource of a deployed stack is replaced by a refactoring: every URN the program declared
before (tests/program/old_urns.json) is still declared, or is an alias of a declared resource."""

import json
from pathlib import Path

import pytest

OLD_URNS = json.loads((Path(__file__).parent / "old_urns.json").read_text())["runs"]


def _label(run: dict) -> str:
    overrides = ",".join(f"{key}={value}" for key, value in sorted(run["config_overrides"].items()))
    return f"{run['stack']}[{overrides}]" if overrides else run["stack"]


@pytest.mark.parametrize("old", OLD_URNS, ids=_label)
def test_every_old_urn_is_kept_or_aliased(old, program_run):
    run = program_run(old["stack"], config_overrides=old["config_overrides"])
    declared = {resource.urn for resource in run.resources}
    aliased = {alias: resource.urn for resource in run.resources for alias in resource.aliases}
    lost = [urn for urn in old["urns"] if urn not in declared and urn not in aliased]
    assert lost == [], f"{_label(old)}: these would be replaced on a deployed stack; give them aliases: {lost}"
    # An alias names a URN nothing declares any more: two resources claiming one state would be an error.
    assert set(aliased) & declared == set(), f"{_label(old)}: aliases of URNs still declared"


def test_the_fixture_holds_the_resources_that_moved():
    """The IoT logging resources moved from the Monitoring component to IotLogging: the fixture must
    hold their old URNs, or the test above would pass without checking an alias."""
    moved = [urn for run in OLD_URNS for urn in run["urns"] if "Monitoring$aws:iot/loggingOptions" in urn]
    assert len(moved) == 2, moved
