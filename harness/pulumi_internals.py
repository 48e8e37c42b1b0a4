"""Every use the harness makes of the Pulumi SDK beyond its public mocks API, in one place.

The public API (`pulumi.runtime.set_mocks`, `reset_options`, `test`, `get_root_resource`,
`set_all_config`, `MockMonitor.get_registered_resources`) runs the program and records it, but
four things the harness needs have no public form. Each is used only through this module, and
tests/harness/test_pulumi_internals.py fails when the installed SDK changes one of them, so an
upgrade breaks there, named, rather than as wrong URNs or missing unknowns somewhere else.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime.proto import source_pb2

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def engine_urn(stack: str, project: str, parent_urn: str, type_token: str, name: str) -> str:
    """The URN the engine gives a resource: its type after its parent's whole type chain and `$`
    (nothing before it under the stack), e.g. `SensorPipeline$Encryption$aws:kms/key:Key`."""
    parent_type = parent_urn.split("::")[2] if parent_urn else ""
    qualified = type_token if parent_type in ("", ROOT_STACK_TYPE) else f"{parent_type}${type_token}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class EngineUrnMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, naming resources as the engine does.

    Why: the mock keeps only the last type of the parent's chain and puts the stack's type before
    top-level resources (`pulumi:pulumi:Stack$aws:...`), so its URNs are not those of a real stack's
    state, and aliases (which name earlier URNs in the engine's form) could not be compared with
    them. The SDK has no option for it; `make_urn` is the method its RegisterResource and
    ReadResource call to name a resource.
    """

    def __init__(self, mocks: pulumi.runtime.Mocks, stack: str, project: str) -> None:
        super().__init__(mocks)
        self.stack = stack
        self.project = project

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(self.stack, self.project, parent, type_, name)


def wire_properties(properties: struct_pb2.Struct) -> dict[str, Any]:
    """A request's wire properties as Python values, unknowns kept as `pulumi.output.Unknown`.

    Why: a first preview's unknown inputs are what the tests and policies judge; the SDK's own
    deserializer is the one that reads the wire format (secrets, assets, resource references)
    exactly as the program wrote it, and `keep_unknowns` is how it keeps them.
    """
    return rpc.deserialize_properties(properties, keep_unknowns=True)


async def resolve_with_unknowns(outputs: dict[str, Any]) -> dict[str, Any]:
    """The stack's outputs resolved, an unknown one (in a first preview) as `pulumi.output.Unknown`.

    Why: the public way to read an output, `apply`, never runs on an unknown value, so a first
    preview's outputs would silently go missing; `Output.future(with_unknowns=True)` returns them.
    """
    if not outputs:
        return {}
    resolved = await pulumi.Output.all(**outputs).future(with_unknowns=True)
    return dict(resolved) if resolved is not None else {}


def _no_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


@contextlib.contextmanager
def without_stack_traces() -> Iterator[None]:
    """Resources registered within send no stack trace and no source position.

    Why: for every resource the SDK walks the whole Python stack (`traceback.extract_stack`, and a
    file URI per frame) so the engine can point at the line that declared it. Under mocks nothing
    reads them (the harness records neither, and the policy analyzer gets neither), and under a
    test runner's deep stack that walk is about a quarter of a run's CPU time. `_get_stack_trace`
    is the function `register_resource` and `read_resource` call for both; the SDK has no option
    to skip it.
    """
    original = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = _no_stack_trace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = original
