"""What every component needs to name, tag and scope its resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class FormerParent:
    """The component some resources were declared under before they moved, and its name.

    A resource's URN holds its parent's type and its own name: a resource that moves
    gets a new URN, which a deployed stack would replace (a new log group, a new role)
    unless the resource names its old URN as an alias. The program's every old URN is
    listed in tests/program/old_urns.json and tested to be kept or aliased.
    """

    resource: pulumi.Resource
    name: str

    def alias(self, role: str) -> pulumi.Alias:
        """The alias of the resource that was `<name>-<role>` under this parent."""
        return pulumi.Alias(name=f"{self.name}-{role}", parent=self.resource)


@dataclass(frozen=True)
class StackContext:
    """The stack's environment suffix, tags, and the account and region it deploys into.

    ARNs are built from these as strings, so policies can name resources that do
    not exist yet (a key policy naming the trail, say) without a dependency cycle.
    """

    suffix: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: pulumi.Input[str]
    tags: dict[str, str]

    def arn(
        self, service: str, resource: pulumi.Input[str], *, region: str | None = None, account: str | None = None
    ) -> pulumi.Output[str]:
        """`arn:<partition>:<service>:<region>:<account>:<resource>`.

        Region and account default to the stack's; pass "" for a global
        service (IAM) or "*" to match any.
        """
        return pulumi.Output.format(
            "arn:{0}:{1}:{2}:{3}:{4}",
            self.partition,
            service,
            self.region if region is None else region,
            self.account_id if account is None else account,
            resource,
        )
