"""The policy pack, running as the engine runs it (a subprocess over gRPC), and fixtures
built as the engine would send them."""

from __future__ import annotations

from typing import Iterator

import pytest
from google.protobuf import json_format, struct_pb2

from offline.analyzer import PolicyAnalyzer, Violation
from offline.mocks import RegisteredResource
from offline.stack_config import project_name

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def fixture(type_token: str, name: str, properties: dict, **extra) -> RegisteredResource:
    struct = struct_pb2.Struct()
    json_format.ParseDict(properties, struct)
    return RegisteredResource(
        urn=f"urn:pulumi:test::{project_name()}::{type_token}::{name}", type=type_token, name=name, custom=True,
        parent="", dependencies=extra.get("dependencies", []),
        property_dependencies=extra.get("property_dependencies", {}), inputs=properties, wire_inputs=struct,
        outputs={}, provider="", protect=False, delete_before_replace=False,
    )


@pytest.fixture(scope="session")
def analyzer() -> Iterator[PolicyAnalyzer]:
    with PolicyAnalyzer(project_name(), "test", preview=True) as running:
        running.configure({"all": "mandatory"})
        yield running


def failing(analyzer: PolicyAnalyzer, policy: str, resources: list[RegisteredResource]) -> set[str]:
    """Names of the resources `policy` reports, analysing each as the engine does."""
    found: set[str] = set()
    for resource in resources:
        violations: list[Violation] = analyzer.analyze(resource)
        if any(v.policy == policy for v in violations):
            found.add(resource.name)
    return found
