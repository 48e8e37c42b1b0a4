"""Assertions on recorded resources that name the resource's URN and the property in every failure."""

from __future__ import annotations

import json
from typing import Any

from harness.mocks import RegisteredResource


def value_at(resource: RegisteredResource, path: str) -> Any:
    """The input at a dotted path of wire names (`serverSideEncryption.kmsKeyArn`, `rules.0.status`)."""
    current: Any = resource.inputs
    for part in path.split("."):
        if isinstance(current, list):
            current = current[int(part)]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise AssertionError(f"{resource.urn}: has no input {path!r} (missing at {part!r})")
    return current


def assert_input(resource: RegisteredResource, path: str, expected: Any) -> None:
    actual = value_at(resource, path)
    assert actual == expected, f"{resource.urn}: {path} = {actual!r}, expected {expected!r}"


def policy_statements(resource: RegisteredResource, path: str = "policy") -> dict[str, dict]:
    """The JSON policy document at `path`, as {Sid: statement}."""
    document = json.loads(value_at(resource, path))
    statements = document["Statement"]
    sids = [statement.get("Sid") for statement in statements]
    assert len(set(sids)) == len(sids) and None not in sids, f"{resource.urn}: {path} statements need unique Sids: {sids}"
    return {statement["Sid"]: statement for statement in statements}
