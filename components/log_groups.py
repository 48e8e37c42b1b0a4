"""Log groups as the stack keeps them: named explicitly, encrypted with its key, expiring."""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext


def encrypted_log_group(
    resource_name: str,
    *,
    name: str,
    retention_days: int,
    kms_key_arn: pulumi.Input[str],
    context: StackContext,
    parent: pulumi.Resource,
    aliases: Sequence[pulumi.Alias] = (),
) -> aws.cloudwatch.LogGroup:
    """`aliases`: the group's earlier names and parents, so a stack deployed before a move keeps it."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=name,
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        tags=context.tags,
        opts=pulumi.ResourceOptions(parent=parent, aliases=list(aliases)),
    )
