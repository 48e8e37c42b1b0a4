"""Least privilege: every IAM, IoT, key and resource policy grants exact actions on
exact resources, and each device acts only as itself.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import partial
from typing import Callable, Iterator

from pulumi_policy import Severity

from policy_kit import (
    MANDATORY,
    Properties,
    Report,
    Settings,
    Validator,
    as_list,
    documents,
    get_path,
    is_allow,
    policy_statements,
    resource_policy,
    statement_label,
    string_list_setting,
    wildcard_actions,
)

IAM_POLICY_PATHS = {
    "aws:iam/rolePolicy:RolePolicy": ["policy"],
    "aws:iam/policy:Policy": ["policy"],
    "aws:iam/userPolicy:UserPolicy": ["policy"],
    "aws:iam/groupPolicy:GroupPolicy": ["policy"],
    "aws:iam/role:Role": ["assumeRolePolicy"],  # and its deprecated inlinePolicies
}
RESOURCE_POLICY_PATHS = {
    "aws:s3/bucketPolicy:BucketPolicy": ["policy"],
    "aws:sns/topicPolicy:TopicPolicy": ["policy"],
    "aws:sns/topic:Topic": ["policy"],
    "aws:sqs/queuePolicy:QueuePolicy": ["policy"],
    "aws:sqs/queue:Queue": ["policy"],
}
KEY_POLICY_PATHS = {"aws:kms/key:Key": ["policy"], "aws:kms/keyPolicy:KeyPolicy": ["policy"]}
IOT_POLICY_PATHS = {"aws:iot/policy:Policy": ["policy"]}
MANAGED_POLICY_ARNS = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/role:Role": "managedPolicyArns",
}
AWS_MANAGED_POLICY = re.compile(r"^arn:aws[\w-]*:iam::aws:policy/(?:.*/)?(?P<name>[^/]+)$")
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
# A thing attribute resolves from the connecting thing too, and only the account sets it
# (iot:UpdateThing): thing-scoped like the name (the program's topics carry the device id attribute).
THING_ATTRIBUTE_VARIABLE = "${iot:Connection.Thing.Attributes["
DEVICE_ACTIONS = {"iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe", "iot:RetainPublish"}
# Actions AWS only authorizes on "*": a wildcard resource is the only way to grant them.
RESOURCELESS_ACTIONS = [
    "cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "logs:CreateLogDelivery",
    "kinesis:ListStreams", "sts:GetCallerIdentity", "iot:DescribeEndpoint", "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
]

least_privilege_policy = partial(resource_policy, enforcement_level=MANDATORY, severity=Severity.HIGH)


def _paths(paths_by_type: dict[str, list[str]]) -> list[str]:
    # A path a resource does not have is skipped, so one list serves all the types.
    return sorted({path for paths in paths_by_type.values() for path in paths})


def _no_wildcard_actions(paths_by_type: dict[str, list[str]],
                         exempt: Callable[[dict], bool] = lambda statement: False) -> Validator:
    paths = _paths(paths_by_type)

    def validate(properties: Properties, _settings: Settings, report: Report) -> None:
        for path, statements in documents(properties, paths):
            for index, statement in enumerate(statements):
                if exempt(statement):
                    continue
                for action in wildcard_actions(statement):
                    report(f"{path} {statement_label(statement, index)} allows the wildcard action {action!r}: "
                           "list the exact actions")
    return validate


def _is_account_administration(statement: dict) -> bool:
    """The one sanctioned wildcard: the account root administers the key (AWS's lock-out check needs it)."""
    principals = as_list(get_path(statement, "Principal.AWS"))
    return (is_allow(statement) and as_list(statement.get("Action")) == ["kms:*"] and bool(principals)
            and all(isinstance(p, str) and p.endswith(":root") for p in principals))


def _no_wildcard_resource(properties: Properties, settings: Settings, report: Report) -> None:
    allowed = set(settings["allowedActions"])
    for path, statements in documents(properties, _paths(IAM_POLICY_PATHS)):
        for index, statement in enumerate(statements):
            if not is_allow(statement) or path == "assumeRolePolicy":
                continue
            broad = "NotResource" in statement or "*" in as_list(statement.get("Resource"))
            needing_scope = [a for a in as_list(statement.get("Action")) if a not in allowed]
            if broad and needing_scope:
                report(f"{path} {statement_label(statement, index)} grants {', '.join(map(str, needing_scope))} "
                       "on every resource: name the ARNs")


def _no_admin_managed_policy(properties: Properties, settings: Settings, report: Report) -> None:
    for property_name in sorted(set(MANAGED_POLICY_ARNS.values())):
        for arn in as_list(properties.get(property_name)):
            match = AWS_MANAGED_POLICY.match(arn) if isinstance(arn, str) else None
            if match and any(fnmatchcase(match["name"], pattern) for pattern in settings["forbiddenPolicies"]):
                report(f"{property_name} attaches the AWS-managed policy {match['name']}: "
                       "grant the exact actions in a policy of your own")


def _thing_scoped(properties: Properties, _settings: Settings, report: Report) -> None:
    for index, statement in enumerate(policy_statements(properties.get("policy")) or []):
        actions = set(as_list(statement.get("Action")))
        if not is_allow(statement) or not (actions & DEVICE_ACTIONS or any("*" in a for a in actions)):
            continue
        for resource in as_list(statement.get("Resource")):
            if not (isinstance(resource, str)
                    and (THING_NAME_VARIABLE in resource or THING_ATTRIBUTE_VARIABLE in resource)):
                report(f"policy {statement_label(statement, index)} grants {', '.join(sorted(actions))} on "
                       f"{resource!r}: scope it to the connecting thing with {THING_NAME_VARIABLE}")


ARN = re.compile(r"^arn:[^:]*:(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.*)$")
# A resource type ahead of the name (`log-group:`, `alarm:`, `trail/`); S3 ARNs have none.
RESOURCE_TYPE = re.compile(r"^[A-Za-z0-9-]+[:/]")
UNTYPED_ARN_SERVICES = {"s3"}
# What a name made only of these matches: every resource of its type.
NAMELESS = set("*?/:")
# Condition operators that narrow a grant when their key matches; a negated
# operator, or one ending in IfExists (true when the key is absent), narrows nothing.
NARROWING_OPERATORS = re.compile(r"^(?:For(?:Any|All)Value:)?(?:ArnLike|ArnEquals|StringLike|StringEquals)$")


def is_account_wide(arn: str) -> bool:
    """An ARN pattern that matches every resource of its type in the account (or in any account)."""
    match = ARN.match(arn)
    if match is None:
        return False
    if match["account"] == "*":
        return True
    resource = match["resource"]
    name = resource if match["service"] in UNTYPED_ARN_SERVICES else RESOURCE_TYPE.sub("", resource, count=1)
    return set(name) <= NAMELESS


def _arn_conditions(statement: dict) -> Iterator[tuple[str, str, list[str]]]:
    """(operator, key, ARN values) of each condition key whose values are ARNs."""
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, values in (keys.items() if isinstance(keys, dict) else []):
            arns = [value for value in as_list(values) if isinstance(value, str) and value.startswith("arn:")]
            if arns:
                yield operator, key, arns


def _service_grants_scoped(properties: Properties, _settings: Settings, report: Report) -> None:
    for path, statements in documents(properties, _paths(KEY_POLICY_PATHS)):
        for index, statement in enumerate(statements):
            services = as_list(get_path(statement, "Principal.Service"))
            if not is_allow(statement) or not services:
                continue
            conditions = list(_arn_conditions(statement))
            wide = [(key, arn) for _operator, key, arns in conditions for arn in arns if is_account_wide(arn)]
            # Condition keys are ANDed, the values of one key ORed: one key all of
            # whose values name this stack's resources scopes the whole statement.
            scoped = any(NARROWING_OPERATORS.match(operator) and not any(map(is_account_wide, arns))
                         for operator, _key, arns in conditions)
            if wide and not scoped:
                patterns = ", ".join(f"{key} {arn!r}" for key, arn in wide)
                report(f"{path} {statement_label(statement, index)} lets {', '.join(map(str, services))} use the "
                       f"key for every resource of the account ({patterns}): name this stack's own resources")


def _lockout_safety_check(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("bypassPolicyLockoutSafetyCheck") is True:
        report("bypassPolicyLockoutSafetyCheck is true: a key policy that locks everyone out would be accepted")


POLICIES = [
    least_privilege_policy(
        "iam-policy-no-wildcard-action",
        "IAM policies (inline, managed and trust policies) allow exact actions only: no `*` in any action.",
        resource_types=IAM_POLICY_PATHS, validate=_no_wildcard_actions(IAM_POLICY_PATHS),
        remediation="Replace wildcard actions with the exact actions the role calls."),
    least_privilege_policy(
        "iot-policy-no-wildcard-action", "IoT policies allow exact actions only.",
        resource_types=IOT_POLICY_PATHS, validate=_no_wildcard_actions(IOT_POLICY_PATHS),
        remediation="List iot:Connect, iot:Publish, ... explicitly."),
    least_privilege_policy(
        "kms-key-policy-no-wildcard-action",
        "Key policies allow exact actions, except the account root's administration statement AWS requires.",
        resource_types=KEY_POLICY_PATHS,
        validate=_no_wildcard_actions(KEY_POLICY_PATHS, exempt=_is_account_administration),
        remediation="Give services exact KMS actions (kms:GenerateDataKey, kms:Decrypt, ...)."),
    least_privilege_policy(
        "aws-resource-policy-no-wildcard-action",
        "Bucket, topic and queue policies allow exact actions only (a wildcard in a Deny is fine).",
        resource_types=RESOURCE_POLICY_PATHS, validate=_no_wildcard_actions(RESOURCE_POLICY_PATHS),
        remediation="List the exact actions each principal needs."),
    least_privilege_policy(
        "iam-policy-no-wildcard-resource",
        "IAM policies grant actions on named resources, except actions AWS only authorizes on `*`.",
        resource_types=IAM_POLICY_PATHS, validate=_no_wildcard_resource,
        severity=Severity.HIGH, remediation="Replace \"*\" with the ARNs of the stack's resources.",
        config={"allowedActions": string_list_setting(RESOURCELESS_ACTIONS, "Actions that may use Resource \"*\"")}),
    least_privilege_policy(
        "iam-policy-attachment-no-admin-managed-policy",
        "No role, user or group gets an AWS-managed administrator or full-access policy.",
        resource_types=MANAGED_POLICY_ARNS, validate=_no_admin_managed_policy, severity=Severity.CRITICAL,
        remediation="Attach a policy of your own with the exact actions and resources.",
        config={"forbiddenPolicies": string_list_setting(
            ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "*FullAccess"],
            "Names (glob patterns) of AWS-managed policies that may not be attached")}),
    least_privilege_policy(
        "iot-policy-thing-scoped",
        "IoT policies scope connect, publish, subscribe and receive to the connecting thing's own name.",
        resource_types=IOT_POLICY_PATHS, validate=_thing_scoped,
        remediation="Use resources such as arn:aws:iot:<region>:<account>:client/${iot:Connection.Thing.ThingName}."),
    least_privilege_policy(
        "kms-key-policy-service-scoped",
        "Key policy statements for AWS service principals are scoped to this stack's resources, not to every "
        "log group, alarm or trail of the account.",
        resource_types=KEY_POLICY_PATHS, validate=_service_grants_scoped,
        remediation="Condition the statement on this stack's own ARNs (kms:EncryptionContext:aws:logs:arn = "
                    "each log group's ARN, aws:SourceArn = the stack's alarms or trail), not on `log-group:*`."),
    least_privilege_policy(
        "kms-key-lockout-safety-check", "KMS keys keep AWS's policy lock-out safety check.",
        resource_types=KEY_POLICY_PATHS, validate=_lockout_safety_check, severity=Severity.MEDIUM,
        remediation="Remove bypass_policy_lockout_safety_check."),
]
