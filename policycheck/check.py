"""The policy check without cloud credentials or the Pulumi CLI.

    python -m policycheck --stack dev [--preview | --update] [--json]
                          [--policy-pack-config FILE | --default-levels]

Runs the program under mocks for the stack (as a first preview, with unknown
outputs, and as an update, with known ones; both unless a flag picks one),
sends every resource through the policy pack over its analyzer protocol,
prints the violations as `pulumi preview` does, and exits 1 on any mandatory
violation, 2 on a configuration problem (the stack file, the policy pack
config, an option), printing every problem found.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from policycheck.analyzer import POLICY_PACK_DIR, PolicyAnalyzer, PolicyConfigError, ProviderInfo, Violation, struct
from harness.mocks import ProgramRun, RegisteredResource, run_program
from harness.stack_config import run_command, project_name, stack_names

PACK_NAME = "iot-sensor-pipeline-policies"
PROVIDER_PREFIX = "pulumi:providers:"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    mode: str  # "preview" (a first preview) or "update"
    violations: list[Violation]
    resources: int = 0  # how many resources went through the pack
    policies: int = 0  # how many of its policies ran (not disabled)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]


def default_policy_config(stack: str) -> Path | None:
    path = POLICY_PACK_DIR / "config" / f"{stack}.json"
    return path if path.exists() else None


def load_policy_config(path: Path | None) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path else {}


def providers(run: ProgramRun) -> Callable[[RegisteredResource], ProviderInfo | None]:
    """Each resource's provider as the engine sends it: an explicit provider's inputs,
    or the default provider configured from the stack's `<package>:` keys (strings, as in config)."""
    explicit = {r.urn: r for r in run.resources if r.type.startswith(PROVIDER_PREFIX)}

    @functools.cache
    def default_provider(package: str) -> ProviderInfo:
        try:
            version = metadata.version(f"pulumi-{package}")
        except metadata.PackageNotFoundError:
            version = "0.0.0"
        properties = {key.split(":", 1)[1]: value for key, value in run.config.items()
                      if key.startswith(f"{package}:")}
        properties["version"] = version
        name = f"default_{version.replace('.', '_')}"
        return ProviderInfo(urn=f"urn:pulumi:{run.stack}::{project_name()}::{PROVIDER_PREFIX}{package}::{name}",
                            name=name, type=f"{PROVIDER_PREFIX}{package}", properties=struct(properties))

    def provider_of(resource: RegisteredResource) -> ProviderInfo | None:
        if resource.type.startswith(PROVIDER_PREFIX):
            return None
        reference = resource.provider.split("::")
        urn = "::".join(reference[:-1]) if len(reference) > 1 else ""
        if urn in explicit:
            chosen = explicit[urn]
            return ProviderInfo(urn=chosen.urn, name=chosen.name, type=chosen.type, properties=chosen.wire_inputs)
        return default_provider(resource.type.split(":", 1)[0])

    return provider_of


def analyzed_resources(run: ProgramRun) -> list[RegisteredResource]:
    """What the engine sends to analyzers: custom resources (components carry no properties)."""
    return [resource for resource in run.resources if resource.custom]


def check_resources(analyzer: PolicyAnalyzer, resources: list[RegisteredResource],
                    provider_of: Callable[[RegisteredResource], ProviderInfo | None]) -> list[Violation]:
    violations: list[Violation] = []
    for resource in resources:
        violations.extend(analyzer.analyze(resource, provider_of(resource)))
    violations.extend(analyzer.analyze_stack(resources, provider_of))
    return violations


def check_run(run: ProgramRun, policy_config: dict[str, Any]) -> CheckResult:
    with PolicyAnalyzer(project_name(), run.stack, run.preview, run.config) as analyzer:
        analyzer.configure(policy_config)
        resources = analyzed_resources(run)
        violations = check_resources(analyzer, resources, providers(run))
        policies = analyzer.enabled_policies
    return CheckResult("preview" if run.preview else "update", violations, len(resources), policies)


def check_stack(stack: str, preview: bool, policy_config: dict[str, Any]) -> CheckResult:
    return check_run(run_program(stack, preview=preview), policy_config)


def _resource_label(urn: str) -> str:
    if not urn:
        return "(stack)"
    type_path, name = urn.split("::")[-2:]
    return f"{type_path.rsplit('$', 1)[-1]}: {name}"


def format_report(stack: str, result: CheckResult) -> str:
    """The violations as `pulumi preview` lists them, most serious first."""
    lines = [f"Policies ({stack}, {'first preview' if result.mode == 'preview' else 'update'}):"]
    if not result.violations:
        lines.append(f"    ✅ {PACK_NAME}: no violations ({result.resources} resources, "
                     f"{result.policies} policies checked)")
    else:
        lines.append(f"    ❌ {PACK_NAME} ({result.resources} resources, {result.policies} policies checked)")
    for violation in sorted(result.violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn)):
        lines.append(f"        - [{violation.level}] [severity: {violation.severity or 'unspecified'}]  "
                     f"{violation.policy}  ({_resource_label(violation.urn)})")
        # The SDK's message is the policy's description, then what this resource got wrong.
        lines.extend(f"          {line}" for line in violation.message.splitlines())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("python -m policycheck", lambda: _check(argv))


def _check(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policycheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help=f"a stack with a Pulumi.<stack>.yaml ({', '.join(stack_names())})")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--preview", action="store_true", help="only a first preview (unknown outputs)")
    modes.add_argument("--update", action="store_true", help="only an update (known outputs)")
    configs = parser.add_mutually_exclusive_group()
    configs.add_argument("--policy-pack-config", type=Path,
                         help="policy configuration JSON, as for `pulumi preview --policy-pack-config` "
                              "(default: policies/config/<stack>.json if present)")
    configs.add_argument("--default-levels", action="store_true",
                         help="no policy configuration: the pack's own levels and settings, as "
                              "`pulumi preview --policy-pack policies` without a config file")
    parser.add_argument("--json", action="store_true", help="print the violations as JSON")
    args = parser.parse_args(argv)

    previews = [True] if args.preview else [False] if args.update else [True, False]
    config_path = None if args.default_levels else args.policy_pack_config or default_policy_config(args.stack)
    try:
        policy_config = load_policy_config(config_path)
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyConfigError(f"--policy-pack-config {config_path}: {error}") from None
    started = time.perf_counter()
    results = [check_stack(args.stack, preview, policy_config) for preview in previews]
    elapsed = time.perf_counter() - started
    mandatory = sum(len(result.mandatory) for result in results)
    if args.json:
        print(json.dumps({
            "stack": args.stack,
            "policyPackConfig": str(config_path) if config_path else None,
            "results": {result.mode: [v.as_dict() for v in result.violations] for result in results},
            "mandatoryViolations": mandatory,
            "checked": {result.mode: {"resources": result.resources, "policies": result.policies}
                        for result in results},
            "seconds": round(elapsed, 2),
        }, indent=2))
    else:
        for result in results:
            print(format_report(args.stack, result))
        print(f"{mandatory} mandatory violation(s); {elapsed:.1f} s")
    return 1 if mandatory else 0

