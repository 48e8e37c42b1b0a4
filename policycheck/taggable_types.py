"""Which pulumi-aws resource types take a `tags` input, read from the installed provider SDK.

    python -m policycheck.taggable_types [--check]

The tagging policy needs the list, but the policy pack does not depend on
pulumi-aws (it would make the pack slow to start and tie it to one provider
version), so the list is generated here into `policies/taggable_types.json`.
`--check` exits 1 when the file is stale; the tests run it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pulumi_aws
from importlib import metadata

from harness.stack_config import PROJECT_DIR

OUTPUT = PROJECT_DIR / "policies" / "taggable_types.json"
# A resource module registers its type token in `_internal_init`, right after
# copying its inputs (one `__props__.__dict__["<input>"] = ...` per input).
_TOKEN = re.compile(r"super\(\w+, __self__\)\.__init__\(\s*'(aws:[^']+)'")
_TAGS_INPUT = '__props__.__dict__["tags"] = tags'


def taggable_types(package_dir: Path = Path(pulumi_aws.__file__).parent) -> list[str]:
    found = set()
    for module in package_dir.rglob("*.py"):
        source = module.read_text(encoding="utf-8")
        if _TAGS_INPUT in source:
            found.update(_TOKEN.findall(source))
    return sorted(found)


def render() -> str:
    return json.dumps({
        "generatedFrom": f"pulumi-aws {metadata.version('pulumi-aws')}",
        "types": taggable_types(),
    }, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policycheck.taggable_types", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in list differs")
    args = parser.parse_args(argv)
    current = render()
    if args.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text() != current
        if stale:
            print(f"{OUTPUT.relative_to(PROJECT_DIR)} is stale: run python -m policycheck.taggable_types", file=sys.stderr)
        return 1 if stale else 0
    OUTPUT.write_text(current)
    print(f"wrote {OUTPUT.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
