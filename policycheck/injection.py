"""Inject one misconfiguration into the program's resources, and run a set of them through the check.

A mutation edits a target resource's wire properties, removes it, or adds a resource beside it; the
target is found by the part it plays in the run (policycheck/roles.py). The catalogue of mutations
is policycheck/catalogue.py; `python -m policycheck.mutations` runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any, Callable, Sequence

from google.protobuf import json_format
from pulumi.runtime.rpc import UNKNOWN

from harness.mocks import ProgramRun, RegisteredResource, urn_parts
from harness.pulumi_internals import engine_urn
from harness.stack_config import project_name
from policycheck.analyzer import PolicyAnalyzer, struct
from policycheck.check import analyzed_resources, default_policy_config, load_policy_config, providers
from policycheck.roles import DeclaredResources, Target

Edit = Callable[[dict], None]
DELETE = object()


@dataclasses.dataclass(frozen=True)
class Addition:
    """A resource declared beside the target: literal properties, and properties that take one of the
    target's outputs as a program's reference would (unknown in a first preview unless it was an input)."""

    type: str
    name: str
    properties: dict[str, Any]
    references: dict[str, str] = dataclasses.field(default_factory=dict)  # property -> the target's output


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One misconfiguration: an edit of a resource's wire properties, its removal, or a resource added beside it."""

    name: str
    policy: str
    target: Target
    edit: Edit | None = None
    remove: bool = False
    add: Addition | None = None
    # The level the intended policy must report it at, with the default levels
    # and with the shipped configs alike.
    level: str = "mandatory"


# Edits of wire properties. One that does not apply (a path or document the resource does not
# have, or a document unknown in a first preview) raises KeyError, IndexError, TypeError or
# ValueError: the mutation is then not applicable to that run.
def set_path(path: str, value) -> Edit:
    """Set (or, with DELETE, remove) the property at a dotted path."""
    def edit(properties: dict) -> None:
        *parents, last = path.split(".")
        target = properties
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = copy.deepcopy(value)
    return edit


def drop(*names: str) -> Edit:
    """Remove top-level properties (those that are set)."""
    def edit(properties: dict) -> None:
        for name in names:
            properties.pop(name, None)
    return edit


def drop_key(path: str, key: str) -> Edit:
    """Remove one key of the map at `path` (fails if it is not there)."""
    def edit(properties: dict) -> None:
        del properties[path][key]
    return edit


def edit_statements(path: str, change: Callable[[list], None]) -> Edit:
    """Edit the statements of the JSON policy document at `path` (fails on an unknown document)."""
    def edit(properties: dict) -> None:
        document = json.loads(properties[path])
        change(document["Statement"])
        properties[path] = json.dumps(document)
    return edit


def add_statement(path: str, statement: dict) -> Edit:
    return edit_statements(path, lambda statements: statements.append(statement))


def update_statement(path: str, which: int | str, **changes) -> Edit:
    """Change a statement: the `which`-th, or the first that allows the action `which`."""
    return edit_statements(path, lambda statements: _statement(statements, which).update(changes))


def widen_policy_variables(path: str, action: str) -> Edit:
    """In the statement that allows `action`, replace each policy variable of its resources
    (`${iot:Connection.Thing.ThingName}`) by `*`: every principal's resource instead of its own."""
    def change(statements: list) -> None:
        statement = _statement(statements, action)
        widened = [re.sub(r"\$\{[^}]*\}", "*", resource) for resource in _as_list(statement["Resource"])]
        if widened == _as_list(statement["Resource"]):
            raise ValueError(f"the statement allowing {action} names no policy variable")
        statement["Resource"] = widened
    return edit_statements(path, change)


def widen_service_grant(service_prefix: str) -> Edit:
    """Widen every ARN in the conditions of the key policy statements for a service principal to
    all resources of its kind in the same account and region (`log-group:/aws/x` -> `log-group:*`)."""
    def change(statements: list) -> None:
        granted = [statement for statement in statements
                   if any(str(service).startswith(service_prefix)
                          for service in _as_list(statement.get("Principal", {}).get("Service")))]
        if not any("Condition" in statement for statement in granted):
            raise KeyError(f"no conditioned key policy statement for {service_prefix}*")
        for statement in granted:
            for values in statement.get("Condition", {}).values():
                for key, value in values.items():
                    widened = list(dict.fromkeys(_any_of_kind(arn) for arn in _as_list(value)))
                    values[key] = widened[0] if len(widened) == 1 else widened
    return edit_statements("policy", change)


def _any_of_kind(value: Any) -> Any:
    """`arn:aws:logs:<region>:<account>:log-group:/aws/x` -> `...:log-group:*`; other values unchanged."""
    if not isinstance(value, str) or not value.startswith("arn:"):
        return value
    *scope, resource = value.split(":", 5)
    kind = re.match(r"[^:/]*[:/]", resource)
    return ":".join([*scope, (kind.group(0) if kind else "") + "*"])


def _statement(statements: list, which: int | str) -> dict:
    if isinstance(which, int):
        return statements[which]
    for statement in statements:
        if which in _as_list(statement.get("Action")):
            return statement
    raise KeyError(f"no statement allows {which}")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def allow(actions, resources, **extra) -> dict:
    return {"Sid": "Injected", "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _replace_properties(resource: RegisteredResource, properties: dict) -> RegisteredResource:
    """The resource with new wire properties; a property set to a literal no longer depends on anything."""
    original = json_format.MessageToDict(resource.wire_inputs)
    unchanged = {key for key in properties if key in original and original[key] == properties[key]}
    dependencies = {key: urns for key, urns in resource.property_dependencies.items() if key in unchanged}
    return dataclasses.replace(resource, wire_inputs=struct(properties), inputs=properties,
                               property_dependencies=dependencies)


def _added_beside(target: RegisteredResource, addition: Addition) -> RegisteredResource:
    """The new resource, a sibling of the target, its references resolved from the target's outputs."""
    properties = copy.deepcopy(addition.properties)
    for prop, output in addition.references.items():
        value = target.outputs.get(output)
        properties[prop] = UNKNOWN if value is None else value
    stack, project, _, _ = urn_parts(target.urn)
    return dataclasses.replace(
        target, urn=engine_urn(stack, project, target.parent, addition.type, addition.name),
        type=addition.type, name=addition.name, dependencies=[target.urn] if addition.references else [],
        property_dependencies={prop: [target.urn] for prop in addition.references},
        wire_inputs=struct(properties), inputs=properties, outputs={}, aliases=[])


def apply(mutation: Mutation, resources: list[RegisteredResource]) -> tuple[list[RegisteredResource], str]:
    """The resources with the mutation applied, and the URN of the resource it should be reported on
    ("" for a removal: the stack policies report those)."""
    target = mutation.target.find(DeclaredResources(resources))
    if mutation.remove:
        return [r for r in resources if r is not target], ""
    if mutation.add is not None:
        added = _added_beside(target, mutation.add)
        return [*resources, added], added.urn
    if mutation.edit is None:
        raise ValueError(f"mutation {mutation.name!r} neither edits, removes nor adds")
    properties = json_format.MessageToDict(target.wire_inputs)
    mutation.edit(properties)
    return [_replace_properties(target, properties) if r is target else r for r in resources], target.urn


@dataclasses.dataclass
class MutationResult:
    mutation: Mutation
    caught: bool
    reported: list[str]  # every policy that fired at the mutation's level
    # False when the mutation cannot be injected: in a first preview, policy
    # documents built from ARNs are unknown as a whole.
    applicable: bool = True


def run_mutations(run: ProgramRun, mutations: Sequence[Mutation], default_levels: bool = False) -> list[MutationResult]:
    """Each mutation through the whole check: Analyze of every resource, then AnalyzeStack.

    With `default_levels`, the pack gets no configuration (its own levels and
    settings); otherwise the stack's shipped one. An unchanged resource gets the
    same verdict as in the unmutated run, so only the resources a mutation
    touched are analyzed again. A target the run does not declare raises
    TargetNotFound: the catalogue no longer fits the program.
    """
    baseline = analyzed_resources(run)
    provider_of = providers(run)
    results = []
    with PolicyAnalyzer(project_name(), run.stack, run.preview, run.config) as analyzer:
        analyzer.configure({} if default_levels else load_policy_config(default_policy_config(run.stack)))
        verdicts = {id(resource): analyzer.analyze(resource, provider_of(resource)) for resource in baseline}
        for mutation in mutations:
            try:
                mutated, urn = apply(mutation, baseline)
            except (ValueError, KeyError, TypeError, IndexError):
                results.append(MutationResult(mutation, caught=False, reported=[], applicable=False))
                continue
            violations = [violation for resource in mutated
                          for violation in (verdicts[id(resource)] if id(resource) in verdicts
                                            else analyzer.analyze(resource, provider_of(resource)))]
            violations += analyzer.analyze_stack(mutated, provider_of)
            at_level = [v for v in violations if v.level == mutation.level]
            caught = any(v.policy == mutation.policy and (not urn or v.urn == urn) for v in at_level)
            results.append(MutationResult(mutation, caught, sorted({v.policy for v in at_level})))
    return results
