"""Every taggable AWS resource carries the organisation's required tags, with values.

"Taggable" means the resource type takes a `tags` input in pulumi-aws
(`taggable_types.json`, generated from the provider SDK by
`python -m policycheck.taggable_types`). Tags the provider adds to everything it
creates (`defaultTags`) count, so a stack that tags through its provider has
no false positives.
"""

from __future__ import annotations

import json
from pathlib import Path

from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policy_kit import (
    MANDATORY,
    Report,
    Settings,
    get_path,
    is_unknown,
    json_object,
    raw,
    resource_args_policy,
    string_list_setting,
)

DEFAULT_REQUIRED_TAGS = ["Project", "Environment", "ManagedBy", "Owner", "CostCenter"]
TAGGABLE_TYPES = frozenset(json.loads((Path(__file__).parent / "taggable_types.json").read_text())["types"])


def provider_default_tags(args: ResourceValidationArgs) -> dict:
    """The provider's `defaultTags.tags` (the engine sends provider inputs JSON-encoded)."""
    if args.provider is None:
        return {}
    default_tags = json_object(raw(args.provider.props).get("defaultTags"))
    tags = json_object(get_path(default_tags, "tags", {}))
    return tags if isinstance(tags, dict) else {}


def _is_empty(value: Any) -> bool:
    return not is_unknown(value) and not str(value).strip()


def _required_tags(args: ResourceValidationArgs, settings: Settings, report: Report) -> None:
    properties = raw(args.props)
    # A type newer than the generated list still counts when it has tags.
    if not args.resource_type.startswith("aws:") or (
            args.resource_type not in TAGGABLE_TYPES and "tags" not in properties):
        return
    tags = properties.get("tags")
    if is_unknown(tags):
        return
    # The resource's own tags win over the provider's, as in AWS.
    effective = {**provider_default_tags(args), **(tags if isinstance(tags, dict) else {})}
    missing = [key for key in settings["requiredTags"] if key not in effective]
    empty = [key for key in settings["requiredTags"] if key in effective and _is_empty(effective[key])]
    if missing:
        report(f"tags is missing required keys: {', '.join(missing)}")
    if empty:
        report(f"tags has empty values for required keys: {', '.join(empty)}")


POLICIES = [
    resource_args_policy(
        "aws-resource-required-tags",
        "Every taggable AWS resource has the required tag keys with non-empty values "
        "(its own tags or its provider's default tags).",
        resource_types=None, validate=_required_tags, enforcement_level=MANDATORY,
        severity=Severity.LOW,
        remediation="Pass tags=<the stack's tags> to the resource, or set default_tags on its provider "
                    "(aws:defaultTags in the stack config for the default provider).",
        config={"requiredTags": string_list_setting(DEFAULT_REQUIRED_TAGS, "Tag keys every taggable resource carries")},
    ),
]
