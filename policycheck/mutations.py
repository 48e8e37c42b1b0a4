"""Inject misconfigurations into the real program's resources and see whether the
policy check catches each with the policy meant to catch it.

    python -m policycheck.mutations [--stack dev] [--preview] [--default-levels]

prints a Markdown table of mutations (policycheck/catalogue.py), the policy expected
to catch each, and whether it did; exits 1 if an applicable mutation went uncaught.
A mutation is caught when its intended policy reports a violation at the mutation's
level (mandatory, except for the few policies that are advisory by design) on the
mutated resource (stack policies: anywhere) under the stack's policy configuration,
or, with `--default-levels`, under no configuration at all: the pack's own levels and
settings, which is what a team reusing the pack gets.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from harness.mocks import run_program
from harness.stack_config import run_command
from policycheck.catalogue import MUTATIONS
from policycheck.injection import MutationResult, run_mutations


def markdown_table(results: list[MutationResult]) -> str:
    lines = ["| mutation | resource | intended policy | level | caught |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        m = result.mutation
        if not result.applicable:
            verdict = "n/a (unknown in a first preview)"
        else:
            verdict = "yes" if result.caught else "NO (" + (", ".join(result.reported) or "nothing") + ")"
        lines.append(f"| {m.name} | {m.target.label} | `{m.policy}` | {m.level} | {verdict} |")
    applicable = [r for r in results if r.applicable]
    lines.append("")
    lines.append(f"{sum(r.caught for r in applicable)} of {len(applicable)} applicable mutations caught by the "
                 f"intended policy ({len(results) - len(applicable)} not applicable).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("python -m policycheck.mutations", lambda: _run(argv))


def _run(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policycheck.mutations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--preview", action="store_true", help="mutate a first preview instead of an update")
    parser.add_argument("--default-levels", action="store_true",
                        help="configure the pack with nothing (its default levels) instead of the stack's config")
    args = parser.parse_args(argv)
    results = run_mutations(run_program(args.stack, preview=args.preview), MUTATIONS,
                            default_levels=args.default_levels)
    print(markdown_table(results))
    return 0 if all(r.caught for r in results if r.applicable) else 1


if __name__ == "__main__":
    sys.exit(main())
