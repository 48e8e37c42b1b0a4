"""What every policy in the pack shares: reading properties that may be unknown,
reading policy documents, and declaring a one-rule policy.

Properties are read in their raw form, with unknown values left as the engine's
sentinels, so a rule decides from what is known (a property that is present but
unknown is still a reference to something) instead of giving up on the first
unknown value it touches, as the SDK's unknown-checking proxy would make it do.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Protocol

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy

UNKNOWN_SENTINELS = frozenset({
    proxy.UNKNOWN_BOOLEAN_VALUE, proxy.UNKNOWN_NUMBER_VALUE, proxy.UNKNOWN_STRING_VALUE,
    proxy.UNKNOWN_ARRAY_VALUE, proxy.UNKNOWN_ASSET_VALUE, proxy.UNKNOWN_ARCHIVE_VALUE,
    proxy.UNKNOWN_OBJECT_VALUE,
})
# Aliases of keys AWS owns and manages (`alias/aws/s3`, ...): never the stack's own key.
AWS_MANAGED_KEY_PREFIX = "alias/aws/"
MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

# A resource's raw properties by wire name (camelCase), unknown values left as the engine's sentinels.
Properties = dict[str, Any]
# A policy's settings: its schema's defaults overlaid with the configured values.
Settings = dict[str, Any]
# The JSON schema of each of a policy's settings, by name.
ConfigSchema = dict[str, dict[str, Any]]


class Report(Protocol):
    """How a rule reports a violation: the message, and in a stack rule the URN of the resource at fault.

    The SDK's callback takes the URN as an optional argument, which its own
    `ReportViolation` alias (a plain Callable) cannot say.
    """

    def __call__(self, message: str, urn: Optional[str] = None) -> None: ...


Validator = Callable[[Properties, Settings, Report], None]
ArgsValidator = Callable[[ResourceValidationArgs, Settings, Report], None]
StackValidator = Callable[[StackValidationArgs, Settings, Report], None]


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def is_known(value: Any) -> bool:
    return not is_unknown(value)


def raw(value: Any) -> Any:
    """The plain dicts and lists behind the SDK's unknown-checking proxies.

    The proxies hand out their target under the key `__target` (the SDK's own
    way out, used when it serializes properties), which reads no value.
    """
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


def get_path(properties: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path (`rules.0.status`); an unknown value on the way is
    returned as is; `default` where a step is missing."""
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


def describe(value: Any) -> str:
    """A property value as a message shows it."""
    return "not set" if value is None else repr(value)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def json_object(value: Any) -> Any:
    """A value that may arrive JSON-encoded (provider inputs are strings on the wire)."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def is_customer_key_reference(value: Any) -> Optional[bool]:
    """True for a customer key, False for none or an AWS-managed key, None if unknown-but-present.

    An unknown value is still a reference (a key ARN computed at deploy time), so
    callers treat None as satisfied; a missing key or `alias/aws/...` is certain.
    """
    if value is None or value == "":
        return False
    if is_unknown(value):
        return None
    return not (isinstance(value, str) and (value.startswith(AWS_MANAGED_KEY_PREFIX)
                                            or f":{AWS_MANAGED_KEY_PREFIX}" in value))


def policy_statements(document: Any) -> Optional[list[dict]]:
    """A policy document's statements, or None when the document is unknown (first preview)."""
    if document is None or is_unknown(document):
        return None
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return None
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else [s for s in as_list(statements) if isinstance(s, dict)]


def statement_label(statement: dict, index: int) -> str:
    return f"statement {statement.get('Sid', index)!s}"


def is_allow(statement: dict) -> bool:
    return statement.get("Effect") == "Allow"


def wildcard_actions(statement: dict) -> list[str]:
    """Actions with a `*` in an Allow statement (a NotAction in an Allow is as broad)."""
    if not is_allow(statement):
        return []
    if "NotAction" in statement:
        return [f"NotAction {', '.join(map(str, as_list(statement['NotAction'])))}"]
    return [action for action in as_list(statement.get("Action")) if isinstance(action, str) and "*" in action]


def integer_setting(default: int, description: str, minimum: int = 0) -> dict:
    return {"type": "integer", "default": default, "minimum": minimum, "description": description}


def string_list_setting(default: list[str], description: str) -> dict:
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


def _settings(config_schema: Optional[ConfigSchema], configured: Mapping[str, Any]) -> Settings:
    # The engine fills schema defaults in too; a pack run without the engine
    # (or with an older one) must not see a missing setting.
    defaults = {key: schema["default"] for key, schema in (config_schema or {}).items() if "default" in schema}
    return {**defaults, **configured}


def resource_policy(
    name: str,
    description: str,
    *,
    resource_types: Optional[Iterable[str]],
    validate: Validator,
    severity: Severity,
    remediation: str,
    enforcement_level: EnforcementLevel,
    config: Optional[ConfigSchema] = None,
) -> ResourceValidationPolicy:
    """One rule for the given resource types (None: every type);
    `validate(properties, settings, report)` sees the raw properties."""

    def on_properties(args: ResourceValidationArgs, settings: Settings, report: Report) -> None:
        validate(raw(args.props), settings, report)

    return resource_args_policy(name, description, resource_types=resource_types, validate=on_properties,
                                severity=severity, remediation=remediation, enforcement_level=enforcement_level,
                                config=config)


def resource_args_policy(
    name: str,
    description: str,
    *,
    resource_types: Optional[Iterable[str]],
    validate: ArgsValidator,
    severity: Severity,
    remediation: str,
    enforcement_level: EnforcementLevel,
    config: Optional[ConfigSchema] = None,
) -> ResourceValidationPolicy:
    """A `resource_policy` whose `validate(args, settings, report)` gets the SDK's args
    (for rules that also need the resource's provider)."""
    types = frozenset(resource_types) if resource_types is not None else None

    def check(args: ResourceValidationArgs, report: Report) -> None:
        if types is not None and args.resource_type not in types:
            return
        validate(args, _settings(config, args.get_config()), report)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        # The SDK passes a callback whose URN is optional; its ReportViolation type says required.
        validate=check,  # type: ignore[arg-type]
        enforcement_level=enforcement_level,
        severity=severity,
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties=config) if config else None,
    )


def stack_policy(
    name: str,
    description: str,
    *,
    validate: StackValidator,
    severity: Severity,
    remediation: str,
    enforcement_level: EnforcementLevel,
    config: Optional[ConfigSchema] = None,
) -> StackValidationPolicy:
    """One rule over the whole stack; `validate(args, settings, report)`."""

    def check(args: StackValidationArgs, report: Report) -> None:
        validate(args, _settings(config, args.get_config()), report)

    return StackValidationPolicy(
        name=name,
        description=description,
        # The SDK passes a callback whose URN is optional; its ReportViolation type says required.
        validate=check,  # type: ignore[arg-type]
        enforcement_level=enforcement_level,
        severity=severity,
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties=config) if config else None,
    )


def documents(properties: Properties, paths: Iterable[str]) -> Iterator[tuple[str, list[dict]]]:
    """(path, statements) of every known policy document at `paths`, and of a role's inline policies."""
    for path in paths:
        statements = policy_statements(get_path(properties, path))
        if statements:
            yield path, statements
    for index, inline in enumerate(as_list(properties.get("inlinePolicies"))):
        statements = policy_statements(get_path(inline, "policy")) if isinstance(inline, dict) else None
        if statements:
            yield f"inlinePolicies[{index}].policy", statements
