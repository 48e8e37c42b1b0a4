"""Drive a Python policy pack over its real analyzer protocol, as the Pulumi engine does.

The engine starts a Python pack through the `pulumi-analyzer-policy-python`
shim, which runs `python -u -m pulumi.policy <engine address> .` in the pack's
folder, with the stack's identity and configuration in `PULUMI_*` variables. `PolicyPack(...)` starts a
gRPC server and prints its port. The engine then calls Handshake,
ConfigureStack, GetAnalyzerInfo, Configure (the `--policy-pack-config`,
reconciled with each policy's schema), Analyze for every resource and
AnalyzeStack with all of them; so does this client.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import grpc
import jsonschema
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from harness.mocks import RegisteredResource
from harness.stack_config import UserConfigError

POLICY_PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}
SEVERITY_NAMES = {
    analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "",
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}
# The engine passes its own gRPC address; `pulumi.policy` parses it but never
# dials it (a pack only serves), so no engine needs to listen there.
UNUSED_ENGINE_ADDRESS = "127.0.0.1:0"
ORGANIZATION = "organization"  # what `pulumi.policy` assumes on a backend without organizations
STARTUP_TIMEOUT_SECONDS = 30


class PolicyConfigError(UserConfigError):
    """A policy pack configuration that the engine would refuse."""


class PolicyPackStartError(RuntimeError):
    """The pack exited, or printed something other than its port."""


@dataclasses.dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str
    description: str
    severity: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    """A resource's provider as the engine describes it to the analyzer: its inputs in wire form."""

    urn: str
    name: str
    type: str
    properties: struct_pb2.Struct

    def message(self) -> analyzer_pb2.AnalyzerProviderResource:
        return analyzer_pb2.AnalyzerProviderResource(type=self.type, urn=self.urn, name=self.name,
                                                     properties=self.properties)


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(dict(values), message)
    return message


def engine_command() -> list[str]:
    """What the shim runs: `<virtualenv>/bin/python -u -m pulumi.policy <engine address> .`.

    The shim takes the interpreter from the pack's `virtualenv` option; here,
    the project's own interpreter (which has the pack's requirements) stands in.
    """
    return [sys.executable, "-u", "-m", "pulumi.policy", UNUSED_ENGINE_ADDRESS, "."]


def reconcile_policy_config(config: Mapping[str, Any], policies: Iterable[analyzer_pb2.PolicyInfo]
                            ) -> dict[str, analyzer_pb2.PolicyConfig]:
    """The `--policy-pack-config` JSON as the engine sends it to Configure.

    `{"all": <level>}` sets every policy's level; `{"<policy>": <level>}` or
    `{"<policy>": {"enforcementLevel": ..., "<setting>": ...}}` sets one. Every
    policy gets its level (the configured one, else its own default) and its
    settings over the schema's defaults, validated against the schema. Every
    problem is collected (a misspelled name with the closest real one) and
    raised together as one PolicyConfigError.
    """
    by_name = {policy.name: policy for policy in policies}
    problems = [f"`{name}` is not a policy of this pack: "
                f"{_did_you_mean(name, by_name) or 'policies/README.md lists every policy'}"
                for name in sorted(set(config) - set(by_name) - {"all"})]
    all_level = config.get("all")
    if all_level is not None and all_level not in LEVELS:
        problems.append(f"\"all\": level {json.dumps(all_level)} is not one of {', '.join(LEVELS)}")
        all_level = None
    result = {}
    for name, policy in by_name.items():
        entry = config.get(name, {})
        if isinstance(entry, str):
            entry = {"enforcementLevel": entry}
        if not isinstance(entry, dict):
            problems.append(f"{name}: expected a level or an object, not {json.dumps(entry)}")
            continue
        level = entry.get("enforcementLevel", all_level or LEVEL_NAMES[policy.enforcementLevel])
        if level not in LEVELS:
            problems.append(f"{name}: level {json.dumps(level)} is not one of {', '.join(LEVELS)}")
            continue
        schema = json_format.MessageToDict(policy.configSchema.properties) if policy.HasField("configSchema") else {}
        settings = {key: value for key, value in entry.items() if key != "enforcementLevel"}
        unexpected = sorted(set(settings) - set(schema))
        for setting in unexpected:
            valid = f"its settings are {', '.join(sorted(schema))}" if schema else "it has no settings"
            hint = _did_you_mean(setting, schema)
            problems.append(f"{name}: `{setting}` is not a setting of this policy: "
                            + (f"{hint} ({valid})" if hint else valid))
        defaults = {key: prop["default"] for key, prop in schema.items() if "default" in prop}
        settings = {**defaults, **{key: value for key, value in settings.items() if key in schema}}
        errors = sorted(jsonschema.Draft202012Validator({"type": "object", "properties": schema}).iter_errors(settings),
                        key=lambda error: list(error.absolute_path))
        problems.extend(f"{name}: {error.message}"
                        + (f" (setting `{'.'.join(map(str, error.absolute_path))}`)" if error.absolute_path else "")
                        for error in errors)
        if not errors and not unexpected:
            result[name] = analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=struct(settings))
    if problems:
        raise PolicyConfigError("the policy pack configuration has problems:\n  - " + "\n  - ".join(problems))
    return result


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


class PolicyAnalyzer:
    """A running policy pack. Use as a context manager: the subprocess stops on exit."""

    def __init__(self, project: str, stack: str, preview: bool, stack_config: Mapping[str, str] | None = None,
                 pack_dir: Path = POLICY_PACK_DIR) -> None:
        env = dict(os.environ, PULUMI_PROJECT=project, PULUMI_STACK=stack, PULUMI_ORGANIZATION=ORGANIZATION,
                   PULUMI_DRY_RUN="true" if preview else "false", PULUMI_CONFIG=json.dumps(dict(stack_config or {})))
        self._channel = None
        self._process = subprocess.Popen(engine_command(), cwd=pack_dir, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        port = self._process.stdout.readline().decode().strip()
        if not port.isdigit():
            self._process.kill()
            _, stderr = self._process.communicate(timeout=10)
            raise PolicyPackStartError(f"the policy pack did not start: {port!r}\n"
                                       f"{stderr.decode(errors='replace')[-2000:]}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(self._channel).result(timeout=STARTUP_TIMEOUT_SECONDS)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._handshake(pack_dir)
        self._stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack, project=project, organization=ORGANIZATION, dry_run=preview,
            config=dict(stack_config or {})))
        self.info = self._stub.GetAnalyzerInfo(empty_pb2.Empty())
        self.policy_config: dict[str, analyzer_pb2.PolicyConfig] | None = None

    def _handshake(self, pack_dir: Path) -> None:
        try:
            self._stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address=UNUSED_ENGINE_ADDRESS, root_directory=str(pack_dir), program_directory=str(pack_dir)))
        except grpc.RpcError as error:
            # Like the engine: a pack that predates Handshake is fine.
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise

    def __enter__(self) -> "PolicyAnalyzer":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._process.kill()
        self._process.wait(timeout=10)
        for stream in (self._process.stdout, self._process.stderr):
            stream.close()

    @property
    def policy_names(self) -> list[str]:
        return [policy.name for policy in self.info.policies]

    def configure(self, config: Mapping[str, Any]) -> None:
        self.policy_config = reconcile_policy_config(config, self.info.policies)
        self._stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=self.policy_config))

    @property
    def enabled_policies(self) -> int:
        """How many policies run (not disabled) under the configuration sent last."""
        if self.policy_config is None:
            return sum(policy.enforcementLevel != analyzer_pb2.DISABLED for policy in self.info.policies)
        return sum(entry.enforcementLevel != analyzer_pb2.DISABLED for entry in self.policy_config.values())

    @staticmethod
    def _options(resource: RegisteredResource) -> analyzer_pb2.AnalyzerResourceOptions:
        return analyzer_pb2.AnalyzerResourceOptions(
            parent=resource.parent, protect=resource.protect,
            deleteBeforeReplace=resource.delete_before_replace, deleteBeforeReplaceDefined=True,
            customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(),
        )

    def analyze(self, resource: RegisteredResource, provider: ProviderInfo | None = None) -> list[Violation]:
        response = self._stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=resource.type, properties=resource.wire_inputs, urn=resource.urn, name=resource.name,
            options=self._options(resource), provider=provider.message() if provider else None,
        ))
        return self._violations(response, resource.urn)

    def analyze_stack(self, resources: list[RegisteredResource],
                      provider_of=lambda resource: None) -> list[Violation]:
        request = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, properties=r.wire_inputs, urn=r.urn, name=r.name, options=self._options(r),
                provider=provider.message() if (provider := provider_of(r)) else None,
                parent=r.parent, dependencies=r.dependencies,
                # Like the engine: properties without dependencies are left out.
                propertyDependencies={key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                                      for key, urns in r.property_dependencies.items() if urns},
            )
            for r in resources
        ])
        return self._violations(self._stub.AnalyzeStack(request), "")

    @staticmethod
    def _violations(response, default_urn: str) -> list[Violation]:
        return [
            Violation(policy=d.policyName, level=LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                      urn=d.urn or default_urn, message=d.message, description=d.description,
                      severity=SEVERITY_NAMES.get(d.severity, ""))
            for d in response.diagnostics
        ]
