"""Small builders for IAM documents, so every policy in the stack has one shape.

Documents are rendered with `pulumi.Output.json_dumps` rather than the
`get_policy_document` data source: the text is the same on a real deploy and
under mocks, and tests can read it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]] | str | pulumi.Output[str] | None = None,
    *,
    effect: str = "Allow",
    principal: Optional[dict[str, Any]] = None,
    condition: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """One policy statement; `actions` are exact action names (no wildcards in this project).

    `resources` is None only in trust policies, which name no resource.
    """
    document: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        document["Principal"] = principal
    document["Action"] = list(actions)
    if resources is not None:
        document["Resource"] = resources if isinstance(resources, (str, pulumi.Output)) else list(resources)
    if condition:
        document["Condition"] = condition
    return document


def document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_role(
    resource_name: str,
    *,
    role_name: str,
    service: str,
    context: StackContext,
    description: str,
    statements: Sequence[dict[str, Any]],
    parent: pulumi.Resource,
    restrict_to_account: bool = True,
    source_arn: Optional[pulumi.Input[str]] = None,
    aliases: Sequence[pulumi.Alias] = (),
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role that `service` can assume, with one inline policy.

    With `restrict_to_account`, the `aws:SourceAccount` condition stops another
    account's resources from making the service act with this role (the
    confused-deputy problem); `source_arn` narrows that to the one resource the
    role serves (`aws:SourceArn`), so no other resource of the account can use it
    either. Only services that send those keys when they assume a role may be
    restricted: others could not assume it at all.

    `aliases`: the role's earlier names and parents (its policy's follow from them),
    so a stack deployed before a move keeps both.
    """
    condition: dict[str, Any] = {}
    if restrict_to_account:
        condition["StringEquals"] = {"aws:SourceAccount": context.account_id}
    if source_arn is not None:
        condition["ArnEquals"] = {"aws:SourceArn": source_arn}
    trust = document(
        statement(
            "TrustService",
            ["sts:AssumeRole"],
            principal={"Service": service},
            condition=condition or None,
        )
    )
    role = aws.iam.Role(
        resource_name,
        name=role_name,
        description=description,
        assume_role_policy=trust,
        tags=context.tags,
        opts=pulumi.ResourceOptions(parent=parent, aliases=list(aliases)),
    )
    policy = aws.iam.RolePolicy(
        f"{resource_name}-policy",
        name=f"{role_name}-policy",
        role=role.id,
        policy=document(*statements),
        opts=pulumi.ResourceOptions(parent=parent, aliases=[
            pulumi.Alias(name=f"{alias.name}-policy", parent=alias.parent) for alias in aliases]),
    )
    return role, policy


def iot_log_writer_role(
    resource_name: str,
    *,
    role_name: str,
    log_group_name: str,
    sid: str,
    context: StackContext,
    description: str,
    parent: pulumi.Resource,
    source_arn: Optional[pulumi.Input[str]] = None,
    aliases: Sequence[pulumi.Alias] = (),
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role IoT Core assumes to write into one log group, and nowhere else.

    The group exists already (the stack creates it, encrypted and expiring), so IoT
    needs no CreateLogGroup or PutRetentionPolicy: only streams and events in it.
    """
    group_arn = context.arn("logs", f"log-group:{log_group_name}")
    return service_role(
        resource_name,
        role_name=role_name,
        service="iot.amazonaws.com",
        context=context,
        source_arn=source_arn,
        description=description,
        statements=[
            statement(
                sid,
                ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                [group_arn, pulumi.Output.concat(group_arn, ":*")],
            ),
        ],
        parent=parent,
        aliases=aliases,
    )

