"""The stacks' own runs of the Pulumi program under the shared mocks, one per stack and mode (made
once per session by `program_run` in tests/conftest.py, which every test here shares)."""

from __future__ import annotations

import pytest

from harness.mocks import ProgramRun


@pytest.fixture(scope="session")
def dev(program_run) -> ProgramRun:
    return program_run("dev")


@pytest.fixture(scope="session")
def prod(program_run) -> ProgramRun:
    return program_run("prod")


@pytest.fixture(scope="session")
def dev_preview(program_run) -> ProgramRun:
    return program_run("dev", preview=True)
