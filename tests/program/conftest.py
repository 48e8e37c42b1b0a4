"""Runs of the Pulumi program under the shared mocks, one per stack and mode."""

from __future__ import annotations

import pytest

from harness.mocks import ProgramRun, run_program


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return run_program("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return run_program("prod")


@pytest.fixture(scope="session")
def dev_preview() -> ProgramRun:
    return run_program("dev", preview=True)
