"""Run the Pulumi program under mocks, as the engine would, and record what it declares.

One harness for the program's tests, the policy check and the local run:
it loads the stack's configuration like the CLI does, answers the few data
sources the program uses, and records every RegisterResource request with its
parent, dependencies and wire-form inputs. With `preview=True` it behaves like a
first `pulumi preview`: resources have no ids and no computed outputs, so
anything derived from them reaches other resources as unknown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import runpy
import sys
from pathlib import Path
from typing import Any, Awaitable, Iterator

import pulumi
from google.protobuf import struct_pb2

from harness.pulumi_internals import (
    ROOT_STACK_TYPE,
    EngineUrnMonitor,
    engine_urn,
    resolve_with_unknowns,
    wire_properties,
    without_stack_traces,
)
from harness.stack_config import PROJECT_DIR, load_stack_config, project_name

MOCK_ACCOUNT_ID = "123456789012"
MOCK_PARTITION = "aws"
DEFAULT_REGION = "ap-southeast-1"
IOT_ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.{region}.amazonaws.com"

# Resource types whose ARN is not `arn:aws:<service>:<region>:<account>:<kind>/<name>`.
_GLOBAL_SERVICES = {"iam", "s3", "cloudfront"}


@dataclasses.dataclass
class RegisteredResource:
    """One RegisterResource request, as the engine (and the policy analyzer) sees it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    wire_inputs: struct_pb2.Struct
    outputs: dict[str, Any]
    provider: str
    protect: bool
    delete_before_replace: bool
    # The URNs the engine would take for this resource's earlier URNs: its `aliases` option
    # (URNs, and specs completed from the resource as the engine completes them), then those
    # it inherits from its parent's aliases. A resource that moves keeps its state through them.
    aliases: list[str] = dataclasses.field(default_factory=list)

    def input(self, name: str, default: Any = None) -> Any:
        return self.inputs.get(name, default)


@dataclasses.dataclass
class ProgramRun:
    """Everything one run of the program declared."""

    stack: str
    preview: bool
    config: dict[str, str]
    resources: list[RegisteredResource]
    stack_outputs: dict[str, Any]
    warnings: list[str]

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RegisteredResource:
        matches = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(matches) != 1:
            names = [r.name for r in self.of_type(type_token)]
            raise LookupError(f"expected one {type_token} named {name!r}, found {len(matches)} among {names}")
        return matches[0]

    def by_urn(self, urn: str) -> RegisteredResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")


def _arn(service: str, region: str, resource: str) -> str:
    scope_region = "" if service in _GLOBAL_SERVICES else region
    scope_account = "" if service == "s3" else MOCK_ACCOUNT_ID
    return f"arn:{MOCK_PARTITION}:{service}:{scope_region}:{scope_account}:{resource}"


class PipelineMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and the data sources the program calls."""

    def __init__(self, region: str, preview: bool) -> None:
        self.region = region
        self.preview = preview

    def call(self, args: pulumi.runtime.MockCallArgs):
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/ci",
                "userId": "AIDACI",
                "id": MOCK_ACCOUNT_ID,
            }, []
        if token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "id": self.region, "endpoint": f"ec2.{self.region}.amazonaws.com",
                    "description": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": MOCK_PARTITION, "dnsSuffix": "amazonaws.com", "id": MOCK_PARTITION,
                    "reverseDnsPrefix": "com.amazonaws"}, []
        if token == "aws:iot/getEndpoint:getEndpoint":
            return {"endpointAddress": IOT_ENDPOINT.format(region=self.region), "id": "iot-endpoint"}, []
        # A mock that answered {} would silently turn the program's use of an
        # unexpected data source into missing inputs: fail loudly instead.
        raise NotImplementedError(f"the mocks (harness/mocks.py) do not answer the data source {token}")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if self.preview:
            # A first preview: the engine knows only the inputs; ids and
            # computed outputs are unknown until the resource exists.
            return "", dict(args.inputs)
        physical_name = _physical_name(args)
        resource_id = physical_name
        outputs = dict(args.inputs)
        service, _, kind = args.typ.partition(":")[2].partition("/")
        kind = kind.split(":")[0]
        arn_resource = f"{kind.lower()}/{physical_name}"
        if args.typ == "aws:kms/key:Key":
            resource_id = hashlib.sha1(args.name.encode()).hexdigest()[:8] + "-1234-5678-9abc-def012345678"
            arn_resource = f"key/{resource_id}"
            outputs["keyId"] = resource_id
        elif args.typ == "aws:kms/alias:Alias":
            arn_resource = physical_name
        elif args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = physical_name
            arn_resource = physical_name
        elif args.typ == "aws:lambda/function:Function":
            arn_resource = f"function:{physical_name}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            arn_resource = f"log-group:{physical_name}"
        elif args.typ == "aws:cloudtrail/trail:Trail":
            arn_resource = f"trail/{physical_name}"
        elif args.typ == "aws:iot/certificate:Certificate":
            resource_id = hashlib.sha256(args.name.encode()).hexdigest()
            arn_resource = f"cert/{resource_id}"
            outputs["certificatePem"] = "-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n"
        elif args.typ == "aws:iot/topicRule:TopicRule":
            arn_resource = f"rule/{physical_name}"
        elif args.typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
            resource_id = hashlib.sha1(args.name.encode()).hexdigest()[:8] + "-aaaa-bbbb-cccc-000000000000"
            outputs["uuid"] = resource_id
        elif args.typ == "aws:sns/topic:Topic":
            arn_resource = physical_name
        elif args.typ == "aws:dynamodb/table:Table":
            arn_resource = f"table/{physical_name}"
        elif args.typ == "aws:kinesis/stream:Stream":
            arn_resource = f"stream/{physical_name}"
        outputs.setdefault("arn", _arn(service, self.region, arn_resource))
        outputs.setdefault("name", physical_name)
        if args.typ == "aws:iam/role:Role":
            outputs["uniqueId"] = "AROA" + hashlib.sha1(args.name.encode()).hexdigest()[:16].upper()
        return resource_id, outputs


def urn_parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of a URN."""
    prefix, project, qualified, name = urn.split("::", 3)
    return prefix.removeprefix("urn:pulumi:"), project, qualified, name


def _physical_name(args: pulumi.runtime.MockResourceArgs) -> str:
    inputs = args.inputs
    for key in ("name", "bucket", "functionName"):
        if isinstance(inputs.get(key), str):
            return inputs[key]
    for key in ("namePrefix", "bucketPrefix"):
        if isinstance(inputs.get(key), str):
            return inputs[key] + "20261125000000000000000001"
    return args.name


class RecordingMonitor(EngineUrnMonitor):
    """A mock monitor that keeps each request's parent, dependencies, wire inputs and aliases,
    resources named with the URNs the engine gives them (harness/pulumi_internals.py)."""

    def __init__(self, mocks: PipelineMocks, stack: str, project: str) -> None:
        super().__init__(mocks, stack, project)
        self.registrations: list[RegisteredResource] = []
        self._aliases_by_urn: dict[str, list[str]] = {}

    def _alias_urns(self, request) -> list[str]:
        """The request's aliases as the engine resolves them (its step generator's generateAliases)."""
        own = list(request.aliasURNs)  # an SDK that cannot send specs resolves them to URNs itself
        for alias in request.aliases:
            if alias.WhichOneof("alias") == "urn":
                own.append(alias.urn)
                continue
            spec = alias.spec
            # A spec names only what changed: the rest is the resource's own.
            parent = "" if spec.WhichOneof("parent") == "noParent" else spec.parentUrn or request.parent
            own.append(engine_urn(spec.stack or self.stack, spec.project or self.project, parent,
                                  spec.type or request.type, spec.name or request.name))
        inherited = []
        parent_name = urn_parts(request.parent)[3] if request.parent else ""
        for parent_alias in self._aliases_by_urn.get(request.parent, []):
            for child_name in [request.name, *(urn_parts(urn)[3] for urn in own)]:
                inherited.append(_inherited_child_alias(request.type, child_name, parent_name, parent_alias))
        return list(dict.fromkeys(own + inherited))

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == ROOT_STACK_TYPE:
            return response
        aliases = self._alias_urns(request)
        self._aliases_by_urn[response.urn] = aliases
        wire_inputs = struct_pb2.Struct()
        wire_inputs.CopyFrom(request.object)
        self.registrations.append(
            RegisteredResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=request.custom,
                parent=request.parent,
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                inputs=wire_properties(request.object),
                wire_inputs=wire_inputs,
                outputs=self.get_registered_resources()[response.urn].state,
                provider=request.provider,
                protect=request.protect,
                delete_before_replace=request.deleteBeforeReplace,
                aliases=aliases,
            )
        )
        return response


def _inherited_child_alias(child_type: str, child_name: str, parent_name: str, parent_alias: str) -> str:
    """The engine's alias for a child of an aliased parent: under the parent's old URN, and a
    name derived from the parent's (`<parent>-suffix`) derived from its old name."""
    stack, project, _, parent_alias_name = urn_parts(parent_alias)
    if parent_name and child_name.startswith(parent_name):
        child_name = parent_alias_name + child_name[len(parent_name):]
    return engine_urn(stack, project, parent_alias, child_type, child_name)


class _WarningRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _project_on_path() -> Iterator[None]:
    added = str(PROJECT_DIR) not in sys.path
    if added:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(PROJECT_DIR))


def run_program(
    stack: str,
    *,
    preview: bool = False,
    config_overrides: dict[str, object] | None = None,
    program: Path = PROJECT_DIR / "__main__.py",
) -> ProgramRun:
    """Run `program` for `stack` under mocks and return what it declared.

    Raises whatever the program raises (a configuration error, for example),
    as `pulumi preview` would report it.
    """
    config = load_stack_config(stack, overrides=config_overrides)
    region = config.get("aws:region", DEFAULT_REGION)
    mocks = PipelineMocks(region=region, preview=preview)
    project = project_name()
    monitor = RecordingMonitor(mocks, stack=stack, project=project)
    logger = logging.getLogger(f"harness.pulumi.{stack}")
    logger.propagate = False
    recorder = _WarningRecorder()
    logger.addHandler(recorder)

    pulumi.runtime.set_all_config(config)
    # A new root stack resource for this run: set_mocks makes one only when there is none.
    pulumi.runtime.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor)
    stack_outputs: dict[str, Any] = {}

    def execute():
        with _project_on_path():
            runpy.run_path(str(program), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        return _capture(resolve_with_unknowns(root.outputs if root is not None else {}), stack_outputs)

    try:
        # The SDK's own test runner: runs the program, awaits what it returns and every
        # outstanding registration, and raises what the program raised. The requests carry
        # no stack traces, which nothing here reads (harness/pulumi_internals.py).
        with without_stack_traces():
            pulumi.runtime.test(execute)()
    finally:
        logger.removeHandler(recorder)
    return ProgramRun(
        stack=stack,
        preview=preview,
        config=config,
        resources=monitor.registrations,
        stack_outputs=stack_outputs,
        warnings=recorder.messages,
    )


async def _capture(outputs: Awaitable[dict[str, Any]], into: dict[str, Any]) -> None:
    into.update(await outputs)
