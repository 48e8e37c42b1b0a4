"""The policy pack running as the engine runs it (a subprocess over gRPC, started
once per session), and fixture resources built as the engine would send them."""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import pytest

from policycheck.analyzer import PolicyAnalyzer, ProviderInfo, Violation, struct
from harness.mocks import RegisteredResource
from policycheck.check import default_policy_config, load_policy_config
from harness.stack_config import project_name

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel on the wire
KEY_ARN = "arn:aws:kms:ap-southeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TAGS = {"Project": "p", "Environment": "dev", "ManagedBy": "pulumi", "Owner": "team", "CostCenter": "cc"}
CANT_RUN = "can't run policy"


@dataclasses.dataclass(frozen=True)
class Case:
    """One fixture resource and the verdict the policy must give it."""

    name: str
    properties: dict
    fails: bool


def passes(name: str, properties: dict) -> Case:
    return Case(name, properties, fails=False)


def fails(name: str, properties: dict) -> Case:
    return Case(name, properties, fails=True)


def urn_of(type_token: str, name: str) -> str:
    return f"urn:pulumi:test::{project_name()}::{type_token}::{name}"


def resource(type_token: str, name: str, properties: dict, **extra) -> RegisteredResource:
    return RegisteredResource(
        urn=urn_of(type_token, name), type=type_token, name=name, custom=True, parent="",
        dependencies=extra.get("dependencies", []), property_dependencies=extra.get("property_dependencies", {}),
        inputs=properties, wire_inputs=struct(properties), outputs={}, provider="", protect=False,
        delete_before_replace=False,
    )


def aws_provider(**properties) -> ProviderInfo:
    """A default AWS provider; like the engine, complex inputs travel JSON-encoded."""
    wire = {key: value if isinstance(value, str) else json.dumps(value) for key, value in properties.items()}
    return ProviderInfo(urn=f"urn:pulumi:test::{project_name()}::pulumi:providers:aws::default_7_51_0",
                        name="default_7_51_0", type="pulumi:providers:aws", properties=struct(wire))


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources=("arn:aws:s3:::bucket",), **extra) -> dict:
    return {"Sid": extra.pop("Sid", "Granted"), "Effect": "Allow", "Action": list(actions),
            "Resource": list(resources) if isinstance(resources, (list, tuple)) else resources, **extra}


@pytest.fixture(scope="session")
def analyzer() -> Iterator[PolicyAnalyzer]:
    """The pack with every policy mandatory and every setting at its default."""
    with PolicyAnalyzer(project_name(), "test", preview=True) as running:
        running.configure({"all": "mandatory"})
        yield running


@pytest.fixture(scope="session")
def project_pack():
    """The pack configured with a stack's shipped policy config (`project_pack("prod")`), one per stack."""
    running: dict[str, PolicyAnalyzer] = {}

    def configured(stack: str) -> PolicyAnalyzer:
        if stack not in running:
            running[stack] = PolicyAnalyzer(project_name(), stack, preview=True)
            running[stack].configure(load_policy_config(default_policy_config(stack)))
        return running[stack]

    yield configured
    for pack in running.values():
        pack.close()


def assert_verdicts(analyzer: PolicyAnalyzer, policy: str, type_token: str, cases: list[Case],
                    provider: ProviderInfo | None = None) -> None:
    """`policy` fails exactly the failing cases, and never skips one as undecidable."""
    unexpected = []
    for case in cases:
        fixture = resource(type_token, f"{policy}--{case.name}", case.properties)
        reported: list[Violation] = [v for v in analyzer.analyze(fixture, provider) if v.policy == policy]
        undecided = [v for v in reported if CANT_RUN in v.message]
        failed = [v for v in reported if v.level == "mandatory"]
        if undecided:
            unexpected.append(f"{fixture.urn}: undecided: {undecided[0].message}")
        elif bool(failed) != case.fails:
            why = failed[0].message.splitlines()[-1] if failed else "no violation"
            unexpected.append(f"{fixture.urn}: expected {'FAIL' if case.fails else 'PASS'}, got: {why}\n"
                              f"    properties: {json.dumps(case.properties)[:300]}")
    assert not unexpected, f"{policy} on {case_count(cases)}:\n" + "\n".join(unexpected)


def case_count(cases: list[Case]) -> str:
    failing = sum(case.fails for case in cases)
    return f"{len(cases)} fixtures ({failing} failing, {len(cases) - failing} passing)"


@dataclasses.dataclass(frozen=True)
class PolicyCases:
    """Fixtures of one resource type for one policy."""

    policy: str
    type_token: str
    cases: list[Case]

    @property
    def id(self) -> str:
        return f"{self.policy}[{self.type_token.rsplit(':', 1)[-1]}]"


def check_policy_cases(analyzer: PolicyAnalyzer, policy_cases: PolicyCases) -> None:
    assert_verdicts(analyzer, policy_cases.policy, policy_cases.type_token, policy_cases.cases)
