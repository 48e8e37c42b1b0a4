"""What every policy in the pack shares: reading properties that may be unknown,
reading policy documents, and declaring a one-rule policy for given resource types.

Properties are read in their raw form, with unknown values left as the engine's
sentinels, so a rule decides from what is known (a property that is present but
unknown is still a reference to something) instead of giving up on the first
unknown value it touches.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (and untyped)
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})
# Aliases of keys AWS owns and manages: not the stack's customer-managed key.
AWS_MANAGED_KEY_PREFIX = "alias/aws/"

Validator = Callable[[dict, dict, ReportViolation], None]


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def raw(value: Any) -> Any:
    """The plain dicts and lists behind the SDK's unknown-checking proxies."""
    if hasattr(value, "__getitem__") and not isinstance(value, (str, bytes, list, dict)):
        try:
            value = value["__target"]
        except (KeyError, TypeError, IndexError):
            pass
    if isinstance(value, dict):
        return {key: raw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [raw(item) for item in value]
    return value


def get_path(properties: dict, path: str, default: Any = None) -> Any:
    """The value at a dotted path (`rules.0.status`); `default` where any step is missing."""
    current: Any = properties
    for part in path.split("."):
        if is_unknown(current):
            return current
        if isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                return default
            current = current[int(part)]
        elif isinstance(current, dict):
            if part not in current:
                return default
            current = current[part]
        else:
            return default
    return current


def is_customer_key_reference(value: Any) -> Optional[bool]:
    """True for a customer key reference, False for none or an AWS-managed key, None if unknown-but-present.

    An unknown value is still a reference (a key ARN computed at deploy time), so
    callers treat None as satisfied; a missing one or `alias/aws/...` is certain.
    """
    if value is None or value == "":
        return False
    if is_unknown(value):
        return None
    return not (isinstance(value, str) and (value.startswith(AWS_MANAGED_KEY_PREFIX) or
                                            f":{AWS_MANAGED_KEY_PREFIX}" in value))


def policy_statements(document: Any) -> Optional[list[dict]]:
    """A policy document's statements, or None when the document is unknown (first preview)."""
    if is_unknown(document) or document is None:
        return None
    if isinstance(document, str):
        if any(sentinel in document for sentinel in UNKNOWN_SENTINELS) and not document.lstrip().startswith("{"):
            return None
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return None
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else [s for s in statements if isinstance(s, dict)]


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def wildcard_actions(statement: dict) -> list[str]:
    """Actions with a `*` in an Allow statement (NotAction in an Allow is as broad)."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement:
        return [f"NotAction {', '.join(map(str, as_list(statement['NotAction'])))}"]
    return [action for action in as_list(statement.get("Action")) if isinstance(action, str) and "*" in action]


def resource_policy(
    name: str,
    description: str,
    *,
    resource_types: Iterable[str],
    validate: Validator,
    severity: Severity,
    remediation: str,
    enforcement_level: EnforcementLevel,
    config: Optional[dict[str, dict]] = None,
) -> ResourceValidationPolicy:
    """One rule for the given resource types; `validate(properties, config, report)` sees raw properties."""
    types = frozenset(resource_types)
    defaults = {key: schema["default"] for key, schema in (config or {}).items() if "default" in schema}

    def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        settings = {**defaults, **(args.get_config() or {})}
        validate(raw(args.props), settings, report)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=check,
        enforcement_level=enforcement_level,
        severity=severity,
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties=config) if config else None,
    )
