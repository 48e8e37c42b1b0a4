"""Every taggable AWS resource carries the organisation's required tags, with values."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity
from pulumi_policy import PolicyConfigSchema

from policy_kit import get_path, is_unknown, raw

DEFAULT_REQUIRED_TAGS = ["Project", "Environment", "ManagedBy", "Owner", "CostCenter"]

# Resource types that take `tags` (pulumi-aws 7.x), for the services this
# pipeline and its neighbours use. A resource of another type is checked too
# whenever it has a `tags` input.
TAGGABLE_TYPES = frozenset({
    "aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:dynamodb/table:Table",
    "aws:kinesis/stream:Stream", "aws:iot/thingType:ThingType", "aws:iot/topicRule:TopicRule",
    "aws:iot/policy:Policy", "aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/user:User",
    "aws:lambda/function:Function", "aws:lambda/eventSourceMapping:EventSourceMapping",
    "aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm", "aws:cloudtrail/trail:Trail", "aws:sns/topic:Topic",
    "aws:sqs/queue:Queue", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/instance:Instance", "aws:rds/instance:Instance", "aws:ecr/repository:Repository",
})


def _provider_default_tags(args: ResourceValidationArgs) -> dict:
    provider = args.provider
    if provider is None:
        return {}
    tags = get_path(raw(provider.props), "defaultTags.tags", {})
    return tags if isinstance(tags, dict) else {}


def _validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:"):
        return
    properties = raw(args.props)
    tags = properties.get("tags")
    if args.resource_type not in TAGGABLE_TYPES and "tags" not in properties:
        return
    if is_unknown(tags):
        return
    required = (args.get_config() or {}).get("requiredTags", DEFAULT_REQUIRED_TAGS)
    # Tags set on the provider reach every resource it creates: count them.
    effective = {**_provider_default_tags(args), **(tags if isinstance(tags, dict) else {})}
    missing = [key for key in required if key not in effective or (not is_unknown(effective[key])
                                                                    and not str(effective[key]).strip())]
    if missing:
        report(f"missing or empty required tags: {', '.join(missing)}")


POLICIES = [
    ResourceValidationPolicy(
        name="aws-resource-required-tags",
        description="Every taggable AWS resource has the required tag keys with non-empty values "
                    "(its own tags or the provider's default tags).",
        validate=_validate,
        enforcement_level=EnforcementLevel.ADVISORY,
        severity=Severity.LOW,
        remediation_steps="Pass tags=<the stack's tags> to the resource, or set aws:defaultTags on the provider.",
        config_schema=PolicyConfigSchema(properties={
            "requiredTags": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_REQUIRED_TAGS,
                             "description": "Tag keys every taggable resource must carry"},
        }),
    ),
]
