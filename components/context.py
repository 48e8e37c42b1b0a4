"""What every component needs to name, tag and scope its resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


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
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
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
