"""Access: least-privilege policies, nothing public, devices pinned to their own identity."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from policy_kit import as_list, get_path, is_unknown, policy_statements, resource_policy, wildcard_actions

MANDATORY = EnforcementLevel.MANDATORY
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"

IAM_DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": ["policy"],
    "aws:iam/policy:Policy": ["policy"],
    "aws:iam/userPolicy:UserPolicy": ["policy"],
    "aws:iam/groupPolicy:GroupPolicy": ["policy"],
    "aws:iam/role:Role": ["assumeRolePolicy"],
}
RESOURCE_POLICY_DOCUMENTS = {
    "aws:s3/bucketPolicy:BucketPolicy": ["policy"],
    "aws:kms/key:Key": ["policy"],
    "aws:kms/keyPolicy:KeyPolicy": ["policy"],
    "aws:sns/topicPolicy:TopicPolicy": ["policy"],
    "aws:sns/topic:Topic": ["policy"],
    "aws:sqs/queuePolicy:QueuePolicy": ["policy"],
    "aws:sqs/queue:Queue": ["policy"],
    "aws:iam/role:Role": ["assumeRolePolicy"],
}


def _documents(properties: dict, paths: list[str]):
    for path in paths:
        statements = policy_statements(get_path(properties, path))
        if statements:
            yield path, statements
    for inline in as_list(properties.get("inlinePolicies")):
        statements = policy_statements(get_path(inline, "policy")) if isinstance(inline, dict) else None
        if statements:
            yield "inlinePolicies", statements


def _document_paths(paths_by_type: dict[str, list[str]]) -> list[str]:
    # A path a resource does not have is skipped, so one list serves all the types.
    return sorted({path for paths in paths_by_type.values() for path in paths})


def _no_wildcard_actions(paths_by_type, allow=lambda statement: False):
    def validate(properties, _config, report):
        for path, statements in _documents(properties, _document_paths(paths_by_type)):
            for index, statement in enumerate(statements):
                if allow(statement):
                    continue
                for action in wildcard_actions(statement):
                    report(f"{path} statement {statement.get('Sid', index)} allows the wildcard action {action!r}; "
                           "list the exact actions")
    return validate


def _is_account_administration(statement: dict) -> bool:
    """The one sanctioned wildcard: a key policy letting the account's own root administer the key."""
    principals = get_path(statement, "Principal.AWS")
    return (statement.get("Effect") == "Allow" and as_list(statement.get("Action")) == ["kms:*"]
            and all(isinstance(p, str) and p.endswith(":root") for p in as_list(principals)) and principals)


def _is_public_principal(principal) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(value == "*" or (isinstance(value, list) and "*" in value) for value in principal.values())
    return False


def _no_public_principal(properties, _config, report):
    for path, statements in _documents(properties, _document_paths(RESOURCE_POLICY_DOCUMENTS)):
        for index, statement in enumerate(statements):
            if statement.get("Effect") == "Allow" and _is_public_principal(statement.get("Principal")):
                report(f"{path} statement {statement.get('Sid', index)} allows any principal (\"*\"); "
                       "name the accounts or services")


def _public_access_block(properties, _config, report):
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        value = properties.get(setting)
        if not is_unknown(value) and value is not True:
            report(f"{setting} is {value!r}; all four public access blocks must be true")


def _denies_insecure_transport(properties, _config, report):
    statements = policy_statements(properties.get("policy"))
    if statements is None:
        return
    for statement in statements:
        condition = get_path(statement, "Condition.Bool.aws:SecureTransport")
        if (statement.get("Effect") == "Deny" and str(condition).lower() == "false"
                and any(a in ("s3:*", "*") for a in as_list(statement.get("Action")))
                and any(str(r).endswith("/*") for r in as_list(statement.get("Resource")))):
            return
    report("the bucket policy does not deny requests without TLS (Deny s3:* on the bucket and its objects "
           "when aws:SecureTransport is false)")


def _function_url(properties, _config, report):
    if properties.get("authorizationType") == "NONE":
        report("the function URL needs no authentication: anyone on the internet can invoke the function")


def _lambda_permission(properties, _config, report):
    principal = properties.get("principal")
    if principal == "*" or principal == "*.amazonaws.com":
        report("the permission lets any principal invoke the function")


def _iot_thing_scoped(properties, _config, report):
    statements = policy_statements(properties.get("policy"))
    for index, statement in enumerate(statements or []):
        if statement.get("Effect") != "Allow":
            continue
        actions = set(as_list(statement.get("Action")))
        if not actions & {"iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe", "iot:*"}:
            continue
        for resource in as_list(statement.get("Resource")):
            if not isinstance(resource, str) or THING_NAME_VARIABLE not in resource:
                report(f"statement {statement.get('Sid', index)} grants {sorted(actions)} on {resource!r}; "
                       f"scope it to the connecting thing with {THING_NAME_VARIABLE}")


def _access_policy(name, description, types, validate, remediation, severity=Severity.HIGH):
    return resource_policy(name, description, resource_types=types, validate=validate, severity=severity,
                           remediation=remediation, enforcement_level=MANDATORY)


POLICIES = [
    _access_policy("iam-policy-no-wildcard-action",
                   "IAM policies (inline, managed, and trust policies) allow exact actions only, no `*` in any action.",
                   IAM_DOCUMENTS, _no_wildcard_actions(IAM_DOCUMENTS),
                   "Replace wildcard actions with the exact actions the role needs."),
    _access_policy("iot-policy-no-wildcard-action",
                   "IoT policies allow exact actions only.",
                   ["aws:iot/policy:Policy"], _no_wildcard_actions({"aws:iot/policy:Policy": ["policy"]}),
                   "List iot:Connect, iot:Publish, ... explicitly."),
    _access_policy("kms-key-policy-no-wildcard-action",
                   "Key policies allow exact actions, except the account root's administration statement AWS requires.",
                   ["aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy"],
                   _no_wildcard_actions({"aws:kms/key:Key": ["policy"]}, allow=_is_account_administration),
                   "Give services exact KMS actions (kms:GenerateDataKey, kms:Decrypt, ...)."),
    _access_policy("aws-policy-no-public-principal",
                   "Resource and trust policies never allow the `*` principal.",
                   RESOURCE_POLICY_DOCUMENTS, _no_public_principal,
                   "Name the account, role or service principal that needs access.", severity=Severity.CRITICAL),
    _access_policy("s3-bucket-public-access-block",
                   "S3 buckets block all four kinds of public access.",
                   ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"], _public_access_block,
                   "Set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets to True.",
                   severity=Severity.CRITICAL),
    _access_policy("s3-bucket-policy-deny-insecure-transport",
                   "S3 bucket policies deny every request made without TLS.",
                   ["aws:s3/bucketPolicy:BucketPolicy"], _denies_insecure_transport,
                   "Add a Deny of s3:* on the bucket and bucket/* with condition Bool aws:SecureTransport = false."),
    _access_policy("lambda-function-url-no-public-access",
                   "Lambda function URLs require IAM authentication.",
                   ["aws:lambda/functionUrl:FunctionUrl"], _function_url,
                   "Set authorization_type=\"AWS_IAM\", or remove the URL.", severity=Severity.CRITICAL),
    _access_policy("lambda-permission-no-public-principal",
                   "Lambda permissions name a specific principal.",
                   ["aws:lambda/permission:Permission"], _lambda_permission,
                   "Set principal to the service or account, with source_arn.", severity=Severity.CRITICAL),
    _access_policy("iot-policy-thing-scoped",
                   "IoT policies scope connect/publish/subscribe/receive to the connecting thing's own name.",
                   ["aws:iot/policy:Policy"], _iot_thing_scoped,
                   "Use resources such as arn:aws:iot:<region>:<account>:client/${iot:Connection.Thing.ThingName}."),
]
