"""Drive a Python policy pack over its real analyzer protocol, as the Pulumi engine does.

The pack runs as a subprocess (`python policies/__main__.py`); `PolicyPack(...)`
starts a gRPC server and prints its port. The engine then calls
GetAnalyzerInfo, Configure, Analyze for every resource, and AnalyzeStack with
all of them; so does this client.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.mocks import RegisteredResource

POLICY_PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}


class PolicyConfigError(ValueError):
    """A policy pack configuration that the engine would refuse."""


@dataclasses.dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    """The default AWS provider as the engine describes it to the analyzer."""

    urn: str
    name: str
    properties: dict[str, Any]


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def parse_policy_config(config: dict[str, Any], known_policies: Iterable[str]) -> dict[str, analyzer_pb2.PolicyConfig]:
    """The `--policy-pack-config` JSON as the engine sends it: per policy a level and properties.

    `{"all": "mandatory"}` sets every policy's level; `{"<policy>": "<level>"}` or
    `{"<policy>": {"enforcementLevel": ..., "<property>": ...}}` sets one.
    """
    known = set(known_policies)
    levels: dict[str, str] = {}
    properties: dict[str, dict[str, Any]] = {}
    if isinstance(config.get("all"), str):
        levels.update({name: config["all"] for name in known})
    for name, value in config.items():
        if name == "all":
            continue
        if name not in known:
            raise PolicyConfigError(f"policy config names {name!r}, which the pack does not have")
        if isinstance(value, str):
            levels[name] = value
        elif isinstance(value, dict):
            if "enforcementLevel" in value:
                levels[name] = value["enforcementLevel"]
            properties[name] = {k: v for k, v in value.items() if k != "enforcementLevel"}
        else:
            raise PolicyConfigError(f"policy config for {name!r} must be a level or an object, not {value!r}")
    result = {}
    for name in set(levels) | set(properties):
        level = levels.get(name)
        if level is not None and level not in LEVELS:
            raise PolicyConfigError(f"policy config for {name!r}: level {level!r} is not one of {', '.join(LEVELS)}")
        entry = analyzer_pb2.PolicyConfig(properties=_struct(properties.get(name, {})))
        if level is not None:
            entry.enforcementLevel = LEVELS[level]
        result[name] = entry
    return result


class PolicyAnalyzer:
    """A running policy pack. Use as a context manager: the subprocess stops on exit."""

    def __init__(self, project: str, stack: str, preview: bool, pack_dir: Path = POLICY_PACK_DIR) -> None:
        env = dict(os.environ, PULUMI_PROJECT=project, PULUMI_STACK=stack,
                   PULUMI_DRY_RUN="true" if preview else "false")
        self._process = subprocess.Popen(
            [sys.executable, "-u", str(pack_dir / "__main__.py")], cwd=pack_dir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        port_line = self._process.stdout.readline().decode().strip()
        if not port_line.isdigit():
            self.close()
            raise RuntimeError(f"the policy pack did not start: {port_line!r} {self._stderr()}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port_line}")
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.info = self._stub.GetAnalyzerInfo(empty_pb2.Empty())

    def _stderr(self) -> str:
        try:
            return self._process.stderr.read().decode(errors="replace")[-2000:]
        except (ValueError, OSError):
            return ""

    def __enter__(self) -> "PolicyAnalyzer":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
        self._process.kill()
        self._process.wait(timeout=10)
        for stream in (self._process.stdout, self._process.stderr):
            stream.close()

    @property
    def policy_names(self) -> list[str]:
        return [policy.name for policy in self.info.policies]

    def configure(self, config: dict[str, Any]) -> None:
        self._stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig=parse_policy_config(config, self.policy_names)))

    def _options(self, resource: RegisteredResource) -> analyzer_pb2.AnalyzerResourceOptions:
        return analyzer_pb2.AnalyzerResourceOptions(
            parent=resource.parent, protect=resource.protect,
            deleteBeforeReplace=resource.delete_before_replace, deleteBeforeReplaceDefined=True,
        )

    def _provider(self, provider: ProviderInfo | None):
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type="pulumi:providers:aws", urn=provider.urn, name=provider.name,
            properties=_struct(provider.properties))

    def analyze(self, resource: RegisteredResource, provider: ProviderInfo | None = None) -> list[Violation]:
        response = self._stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=resource.type, properties=resource.wire_inputs, urn=resource.urn, name=resource.name,
            options=self._options(resource), provider=self._provider(provider),
        ))
        return self._violations(response, resource.urn)

    def analyze_stack(self, resources: list[RegisteredResource], provider: ProviderInfo | None = None) -> list[Violation]:
        request = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, properties=r.wire_inputs, urn=r.urn, name=r.name, options=self._options(r),
                provider=self._provider(provider), parent=r.parent, dependencies=r.dependencies,
                propertyDependencies={key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                                      for key, urns in r.property_dependencies.items()},
            )
            for r in resources
        ])
        return self._violations(self._stub.AnalyzeStack(request), "")

    @staticmethod
    def _violations(response, default_urn: str) -> list[Violation]:
        return [
            Violation(policy=d.policyName, level=LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                      urn=d.urn or default_urn, message=d.message, description=d.description)
            for d in response.diagnostics
        ]
