"""The program's resources found by the part they play (the archive bucket, the processor's role,
the alarm on its iterator age), through what they reference in the run, not by the names a stack
gives them.

References are the engine's property dependencies: they are known in a first preview as in an
update, whatever the stack is called, so a mutation finds its target the same way on every stack
and in both modes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from harness.mocks import RegisteredResource

BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOG_METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
RULE = "aws:iot/topicRule:TopicRule"
TRAIL = "aws:cloudtrail/trail:Trail"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"


class TargetNotFound(LookupError):
    """The program declares no resource (or more than one) that plays a mutation target's part."""


def short_type(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


class DeclaredResources:
    """The resources of one run, looked up by type and by what references what."""

    def __init__(self, resources: list[RegisteredResource]) -> None:
        self.resources = resources

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def only(self, type_token: str) -> RegisteredResource:
        return _exactly_one(self.of_type(type_token), f"the stack's {short_type(type_token)}")

    def referenced_by(self, resource: RegisteredResource, prop: str, type_token: str) -> RegisteredResource:
        """The one resource of `type_token` that `resource`'s input `prop` refers to."""
        urns = set(resource.property_dependencies.get(prop, []))
        return _exactly_one([r for r in self.of_type(type_token) if r.urn in urns],
                            f"the {short_type(type_token)} that {resource.name}'s {prop} refers to")

    def referencing(self, type_token: str, prop: str, target: RegisteredResource) -> RegisteredResource:
        """The one resource of `type_token` whose input `prop` refers to `target`."""
        return _exactly_one([r for r in self.of_type(type_token) if target.urn in r.property_dependencies.get(prop, [])],
                            f"the {short_type(type_token)} whose {prop} refers to {target.name}")


def _exactly_one(found: list[RegisteredResource], wanted: str) -> RegisteredResource:
    if len(found) != 1:
        raise TargetNotFound(f"expected one resource as {wanted}, found {len(found)}: {[r.name for r in found]}")
    return found[0]


@dataclasses.dataclass(frozen=True)
class Target:
    """A resource a mutation changes: its type, the part it plays, and how to find it."""

    type: str
    role: str  # what it is for, after its type in the report: "for the archive", "of the processor"
    find: Callable[[DeclaredResources], RegisteredResource]

    @property
    def label(self) -> str:
        return f"`{short_type(self.type)}` {self.role}".rstrip()


# The parts resources play, each found from resources found before it.
def processor(declared: DeclaredResources) -> RegisteredResource:
    return declared.only(FUNCTION)


def archive_bucket(declared: DeclaredResources) -> RegisteredResource:
    """The bucket the processor writes to: its environment names it."""
    return declared.referenced_by(processor(declared), "environment", BUCKET)


def audit_bucket(declared: DeclaredResources) -> RegisteredResource:
    """The bucket the trail delivers to."""
    return declared.referenced_by(declared.only(TRAIL), "s3BucketName", BUCKET)


def access_log_bucket(declared: DeclaredResources) -> RegisteredResource:
    """The bucket the archive's server access logs go to."""
    logging = declared.referencing(BUCKET_LOGGING, "bucket", archive_bucket(declared))
    return declared.referenced_by(logging, "targetBucket", BUCKET)


def processor_role(declared: DeclaredResources) -> RegisteredResource:
    return declared.referenced_by(processor(declared), "role", ROLE)


def processor_log_group(declared: DeclaredResources) -> RegisteredResource:
    return declared.referenced_by(processor(declared), "loggingConfig", LOG_GROUP)


def rule_role(declared: DeclaredResources) -> RegisteredResource:
    """The role the topic rule puts records into the stream with."""
    return declared.referenced_by(declared.only(RULE), "kineses", ROLE)


def rule_error_log_group(declared: DeclaredResources) -> RegisteredResource:
    """Where the topic rule's error action writes."""
    return declared.referenced_by(declared.only(RULE), "errorAction", LOG_GROUP)


# Targets: a resource of a type, in the part it plays.
def the(type_token: str) -> Target:
    """The stack's only resource of a type (its stream, its table, its trail)."""
    return Target(type_token, "", lambda declared: declared.only(type_token))


def playing(type_token: str, role: str, find: Callable[[DeclaredResources], RegisteredResource]) -> Target:
    return Target(type_token, role, find)


def companion(type_token: str, bucket: Target) -> Target:
    """A resource that configures a bucket (its encryption, versioning, policy...)."""
    return Target(type_token, bucket.role,
                  lambda declared: declared.referencing(type_token, "bucket", bucket.find(declared)))


def role_policy(role: Target) -> Target:
    """The inline policy of a role."""
    return Target(ROLE_POLICY, role.role, lambda declared: declared.referencing(ROLE_POLICY, "role", role.find(declared)))


def processor_alarm(metric: str) -> Target:
    """The alarm on one of the processor's Lambda metrics."""
    def find(declared: DeclaredResources) -> RegisteredResource:
        function = processor(declared)
        return _exactly_one([alarm for alarm in declared.of_type(ALARM)
                             if function.urn in alarm.property_dependencies.get("dimensions", [])
                             and alarm.inputs.get("metricName") == metric],
                            f"the alarm on {function.name}'s {metric}")
    return Target(ALARM, f"on the processor's {metric}", find)


def audit_filter(watches: str, pattern_part: str) -> Target:
    """The trail's metric filter whose pattern watches for something (`pattern_part` is in it)."""
    def find(declared: DeclaredResources) -> RegisteredResource:
        return _exactly_one([f for f in declared.of_type(LOG_METRIC_FILTER) if pattern_part in f.inputs.get("pattern", "")],
                            f"the metric filter for {watches}")
    return Target(LOG_METRIC_FILTER, f"for {watches}", find)


def audit_alarm(audit: Target) -> Target:
    """The alarm on a metric filter's metric."""
    def find(declared: DeclaredResources) -> RegisteredResource:
        metric = audit.find(declared).inputs.get("metricTransformation", {})
        return _exactly_one([alarm for alarm in declared.of_type(ALARM)
                             if (alarm.inputs.get("metricName"), alarm.inputs.get("namespace"))
                             == (metric.get("name"), metric.get("namespace"))],
                            f"the alarm on the metric filter {audit.role}")
    return Target(ALARM, audit.role, find)


ARCHIVE = playing(BUCKET, "for the archive", archive_bucket)
AUDIT_BUCKET = playing(BUCKET, "for the trail's logs", audit_bucket)
ACCESS_LOG_BUCKET = playing(BUCKET, "for access logs", access_log_bucket)
PROCESSOR = playing(FUNCTION, "", processor)
PROCESSOR_ROLE = playing(ROLE, "of the processor", processor_role)
RULE_ROLE = playing(ROLE, "of the topic rule", rule_role)
PROCESSOR_LOG_GROUP = playing(LOG_GROUP, "of the processor", processor_log_group)
RULE_ERROR_LOG_GROUP = playing(LOG_GROUP, "for the rule's errors", rule_error_log_group)
