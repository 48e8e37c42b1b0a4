"""The policy check without cloud credentials or the Pulumi CLI.

    python -m offline.policy_check --stack dev [--mode preview|update|both] [--json]
                                   [--policy-pack-config FILE]

Runs the program under mocks for the stack (as a first preview, with unknown
outputs, and as an update, with known ones), sends every resource through the
policy pack over its analyzer protocol, prints the violations as `pulumi
preview` does, and exits 1 on any mandatory violation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from offline.analyzer import POLICY_PACK_DIR, PolicyAnalyzer, PolicyConfigError, ProviderInfo, Violation
from offline.mocks import ProgramRun, RegisteredResource, run_program
from offline.stack_config import StackConfigError, project_name, stack_names

MODES = {"preview": (True,), "update": (False,), "both": (True, False)}


def default_policy_config(stack: str) -> Path | None:
    path = POLICY_PACK_DIR / "config" / f"{stack}.json"
    return path if path.exists() else None


def provider_info(run: ProgramRun) -> ProviderInfo:
    """The default AWS provider, configured from the stack's `aws:` keys as the CLI configures it."""
    properties: dict[str, Any] = {}
    for key, value in run.config.items():
        if key.startswith("aws:"):
            name = key[len("aws:"):]
            try:
                properties[name] = json.loads(value)
            except json.JSONDecodeError:
                properties[name] = value
    urn = f"urn:pulumi:{run.stack}::{project_name()}::pulumi:providers:aws::default"
    return ProviderInfo(urn=urn, name="default", properties=properties)


def analyzed_resources(run: ProgramRun) -> list[RegisteredResource]:
    """What the engine sends to analyzers: custom resources (components carry no properties)."""
    return [resource for resource in run.resources if resource.custom]


def check_resources(analyzer: PolicyAnalyzer, resources: list[RegisteredResource],
                    provider: ProviderInfo | None) -> list[Violation]:
    violations: list[Violation] = []
    for resource in resources:
        violations.extend(analyzer.analyze(resource, provider))
    violations.extend(analyzer.analyze_stack(resources, provider))
    return violations


def check_stack(stack: str, preview: bool, policy_config: dict[str, Any]) -> list[Violation]:
    run = run_program(stack, preview=preview)
    with PolicyAnalyzer(project_name(), stack, preview) as analyzer:
        analyzer.configure(policy_config)
        return check_resources(analyzer, analyzed_resources(run), provider_info(run))


def format_report(stack: str, mode: str, violations: list[Violation]) -> str:
    lines = [f"Policies ({stack}, {mode}):"]
    if not violations:
        lines.append("    ✅ iot-sensor-pipeline-policies: no violations")
    for violation in sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn)):
        resource = violation.urn.rsplit("::", 1)[-1] if violation.urn else "(stack)"
        kind = violation.urn.split("::")[2].rsplit("$", 1)[-1] if violation.urn.count("::") >= 3 else ""
        lines.append(f"    - [{violation.level}]  {violation.policy}  ({kind}: {resource})")
        lines.append(f"      {violation.description}")
        lines.append(f"      {violation.message}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.policy_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help=f"a stack with a Pulumi.<stack>.yaml ({', '.join(stack_names())})")
    parser.add_argument("--mode", choices=sorted(MODES), default="both",
                        help="a first preview (unknown outputs), an update (known outputs), or both (default)")
    parser.add_argument("--policy-pack-config", type=Path,
                        help="policy configuration JSON, as for `pulumi preview --policy-pack-config` "
                             "(default: policies/config/<stack>.json if present)")
    parser.add_argument("--json", action="store_true", help="print the violations as JSON")
    args = parser.parse_args(argv)

    config_path = args.policy_pack_config or default_policy_config(args.stack)
    try:
        policy_config = json.loads(config_path.read_text()) if config_path else {}
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"--policy-pack-config {config_path}: {error}")
    results: dict[str, list[Violation]] = {}
    started = time.perf_counter()
    try:
        for preview in MODES[args.mode]:
            mode = "preview" if preview else "update"
            results[mode] = check_stack(args.stack, preview, policy_config)
    except (StackConfigError, PolicyConfigError) as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - started
    mandatory = sum(1 for violations in results.values() for v in violations if v.level == "mandatory")
    if args.json:
        print(json.dumps({
            "stack": args.stack,
            "results": {mode: [v.as_dict() for v in violations] for mode, violations in results.items()},
            "mandatoryViolations": mandatory,
            "seconds": round(elapsed, 2),
        }, indent=2))
    else:
        for mode, violations in results.items():
            print(format_report(args.stack, mode, violations))
        print(f"{mandatory} mandatory violation(s) in {elapsed:.1f} s")
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
