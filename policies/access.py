"""Public access: nothing in the stack can be read, written or invoked by anyone
outside the account (mandatory), and AWS services act only for this account.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pulumi_policy import Severity

from policy_kit import (
    MANDATORY,
    Properties,
    Report,
    Settings,
    as_list,
    documents,
    get_path,
    is_allow,
    is_known,
    policy_statements,
    resource_policy,
    statement_label,
)

# Where each type keeps a resource-based or trust policy document.
RESOURCE_POLICY_PATHS = {
    "aws:s3/bucketPolicy:BucketPolicy": ["policy"],
    "aws:kms/key:Key": ["policy"],
    "aws:kms/keyPolicy:KeyPolicy": ["policy"],
    "aws:sns/topicPolicy:TopicPolicy": ["policy"],
    "aws:sns/topic:Topic": ["policy"],
    "aws:sqs/queuePolicy:QueuePolicy": ["policy"],
    "aws:sqs/queue:Queue": ["policy"],
    "aws:iam/role:Role": ["assumeRolePolicy"],
}
PUBLIC_CANNED_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEE_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                         "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PUBLIC_ACCESS_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
# Service principals on the account's own behalf need no source scoping.
SERVICE_SUFFIX = ".amazonaws.com"

public_access_policy = partial(resource_policy, enforcement_level=MANDATORY, severity=Severity.CRITICAL)


def _is_public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in as_list(value) for value in principal.values())
    return False


def _no_public_principal(properties: Properties, _settings: Settings, report: Report) -> None:
    paths = sorted({path for paths in RESOURCE_POLICY_PATHS.values() for path in paths})
    for path, statements in documents(properties, paths):
        for index, statement in enumerate(statements):
            if not is_allow(statement):
                continue
            if _is_public_principal(statement.get("Principal")) or "NotPrincipal" in statement:
                report(f"{path} {statement_label(statement, index)} allows any principal: "
                       "name the accounts, roles or services")


def _public_access_block(properties: Properties, _settings: Settings, report: Report) -> None:
    for setting in PUBLIC_ACCESS_SETTINGS:
        value = properties.get(setting)
        if is_known(value) and value is not True:
            report(f"{setting} is {value!r}: all four public access blocks must be true")


def _is_tls_deny(statement: dict) -> bool:
    condition = get_path(statement, "Condition.Bool.aws:SecureTransport")
    resources = [str(r) for r in as_list(statement.get("Resource"))]
    return (statement.get("Effect") == "Deny" and str(condition).lower() == "false"
            and any(action in ("s3:*", "*") for action in as_list(statement.get("Action")))
            and any(r.endswith("/*") or r == "*" for r in resources)
            and any(not r.endswith("/*") for r in resources))


def _denies_insecure_transport(properties: Properties, _settings: Settings, report: Report) -> None:
    statements = policy_statements(properties.get("policy"))
    if statements is not None and not any(_is_tls_deny(statement) for statement in statements):
        report("policy has no statement denying s3:* on the bucket and its objects when aws:SecureTransport "
               "is false: requests without TLS are allowed")


def _ownership_enforced(properties: Properties, _settings: Settings, report: Report) -> None:
    ownership = get_path(properties, "rule.objectOwnership")
    if is_known(ownership) and ownership != "BucketOwnerEnforced":
        report(f"rule.objectOwnership is {ownership!r}: ACLs stay active and can grant public access")


def _no_public_acl(properties: Properties, _settings: Settings, report: Report) -> None:
    acl = properties.get("acl")
    if acl in PUBLIC_CANNED_ACLS:
        report(f"acl is {acl!r}: the bucket is readable outside the account")
    for grant in as_list(get_path(properties, "accessControlPolicy.grants")):
        if get_path(grant, "grantee.uri") in PUBLIC_GRANTEE_GROUPS:
            report(f"accessControlPolicy grants {get_path(grant, 'permission')} to {get_path(grant, 'grantee.uri')}")


def _function_url(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("authorizationType") == "NONE":
        report("authorizationType is \"NONE\": anyone on the internet can invoke the function")


def _lambda_permission(properties: Properties, _settings: Settings, report: Report) -> None:
    principal = properties.get("principal")
    if principal == "*":
        report("principal is \"*\": anyone can invoke the function")
    if properties.get("functionUrlAuthType") == "NONE":
        report("functionUrlAuthType is \"NONE\": the permission opens the function URL to anyone")


def _permission_source_scoped(properties: Properties, _settings: Settings, report: Report) -> None:
    principal = properties.get("principal")
    if (isinstance(principal, str) and principal.endswith(SERVICE_SUFFIX)
            and properties.get("sourceArn") is None and properties.get("sourceAccount") is None):
        report(f"principal {principal!r} has no sourceArn or sourceAccount: the service may invoke the "
               "function on behalf of any account")


POLICIES = [
    public_access_policy(
        "aws-policy-no-public-principal",
        "Resource and trust policies never allow the `*` principal (or everyone but a NotPrincipal).",
        resource_types=RESOURCE_POLICY_PATHS, validate=_no_public_principal,
        remediation="Name the account, role or service principal that needs access."),
    public_access_policy(
        "s3-bucket-public-access-block", "S3 buckets block all four kinds of public access.",
        resource_types=["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"], validate=_public_access_block,
        remediation="Set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets "
                    "to True."),
    public_access_policy(
        "s3-bucket-policy-deny-insecure-transport", "S3 bucket policies deny every request made without TLS.",
        resource_types=["aws:s3/bucketPolicy:BucketPolicy"], validate=_denies_insecure_transport,
        severity=Severity.HIGH,
        remediation="Add a Deny of s3:* on the bucket and bucket/* with condition Bool aws:SecureTransport = false."),
    public_access_policy(
        "s3-bucket-ownership-enforced", "S3 buckets disable ACLs (object ownership BucketOwnerEnforced).",
        resource_types=["aws:s3/bucketOwnershipControls:BucketOwnershipControls"], validate=_ownership_enforced,
        severity=Severity.MEDIUM,
        remediation="Use aws.s3.BucketOwnershipControls with rule={\"object_ownership\": \"BucketOwnerEnforced\"}."),
    public_access_policy(
        "s3-bucket-no-public-acl", "No bucket ACL grants access to all users or all authenticated AWS users.",
        resource_types=["aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucket:Bucket",
                        "aws:s3/bucketV2:BucketV2"],
        validate=_no_public_acl, remediation="Remove the ACL; enforce bucket ownership and grant through policies."),
    public_access_policy(
        "lambda-function-url-no-public-access", "Lambda function URLs require IAM authentication.",
        resource_types=["aws:lambda/functionUrl:FunctionUrl"], validate=_function_url,
        remediation="Set authorization_type=\"AWS_IAM\", or remove the URL."),
    public_access_policy(
        "lambda-permission-no-public-principal", "Lambda permissions name a principal and keep function URLs private.",
        resource_types=["aws:lambda/permission:Permission"], validate=_lambda_permission,
        remediation="Set principal to the service or account, with source_arn; never function_url_auth_type NONE."),
    resource_policy(
        "lambda-permission-source-scoped",
        "Lambda permissions for an AWS service name the source resource or account (no confused deputy).",
        resource_types=["aws:lambda/permission:Permission"], validate=_permission_source_scoped,
        enforcement_level=MANDATORY, severity=Severity.MEDIUM,
        remediation="Set source_arn (or source_account) to the resource that invokes the function."),
]
