"""Inject misconfigurations into the real program's resources and see whether the
policy check catches each with the policy meant to catch it.

    python -m policycheck.mutations [--stack dev] [--preview] [--default-levels]

prints a Markdown table of mutations, the policy expected to catch each, and
whether it did; exits 1 if an applicable mutation went uncaught. A mutation is
caught when its intended policy reports a violation at the mutation's level
(mandatory, except for the few policies that are advisory by design) on the
mutated resource (stack policies: anywhere) under the stack's policy
configuration, or, with `--default-levels`, under no configuration at all: the
pack's own levels and settings, which is what a team reusing the pack gets.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from typing import Callable, Sequence

from google.protobuf import json_format

from policycheck.analyzer import PolicyAnalyzer, struct
from harness.mocks import ProgramRun, RegisteredResource, run_program
from policycheck.check import (
    analyzed_resources,
    default_policy_config,
    load_policy_config,
    providers,
)
from harness.stack_config import project_name

Edit = Callable[[dict], None]
DELETE = object()

STREAM = "aws:kinesis/stream:Stream"
TABLE = "aws:dynamodb/table:Table"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
TRAIL = "aws:cloudtrail/trail:Trail"
RULE = "aws:iot/topicRule:TopicRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IOT_POLICY = "aws:iot/policy:Policy"
KEY = "aws:kms/key:Key"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One misconfiguration: an edit of a resource's wire properties, its removal, or a resource added beside it."""

    name: str
    policy: str
    resource_type: str
    # A part of the resource's name, to pick one of several of its type.
    name_contains: str = ""
    edit: Edit | None = None
    remove: bool = False
    add: tuple[str, str, dict] | None = None  # (type, name, wire properties) of a new resource
    # The level the intended policy must report it at, with the default levels
    # and with the shipped configs alike.
    level: str = "mandatory"


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


def edit_statements(path: str, change: Callable[[list], None]) -> Edit:
    """Edit the statements of the JSON policy document at `path` (fails on an unknown document)."""
    def edit(properties: dict) -> None:
        document = json.loads(properties[path])
        change(document["Statement"])
        properties[path] = json.dumps(document)
    return edit


def add_statement(path: str, statement: dict) -> Edit:
    return edit_statements(path, lambda statements: statements.append(statement))


def update_statement(path: str, index: int, **changes) -> Edit:
    return edit_statements(path, lambda statements: statements[index].update(changes))


def scope_service_grant(service_prefix: str, condition: dict) -> Edit:
    """Replace the conditions of the key policy statements for a service principal (fails if there is none)."""
    def change(statements: list) -> None:
        granted = [statement for statement in statements
                   if any(str(service).startswith(service_prefix)
                          for service in _as_list(statement.get("Principal", {}).get("Service")))]
        if not granted:
            raise KeyError(f"no key policy statement for {service_prefix}*")
        for statement in granted:
            statement["Condition"] = copy.deepcopy(condition)
    return edit_statements("policy", change)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def allow(actions, resources, **extra) -> dict:
    return {"Sid": "Injected", "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


MUTATIONS: list[Mutation] = [
    # Encryption
    Mutation("drop the stream's encryption", "kinesis-stream-customer-managed-key", STREAM,
             edit=lambda p: [p.pop("encryptionType", None), p.pop("kmsKeyId", None)]),
    Mutation("stream on the AWS-managed key", "kinesis-stream-customer-managed-key", STREAM,
             edit=set_path("kmsKeyId", "alias/aws/kinesis")),
    Mutation("table on the AWS-owned key", "dynamodb-table-customer-managed-key", TABLE,
             edit=set_path("serverSideEncryption", DELETE)),
    Mutation("table on the AWS-managed key", "dynamodb-table-customer-managed-key", TABLE,
             edit=set_path("serverSideEncryption.kmsKeyArn", DELETE)),
    Mutation("bucket encrypted with SSE-S3", "s3-bucket-sse-s3-only-for-access-logs", ENCRYPTION, "archive",
             edit=set_path("rules.0.applyServerSideEncryptionByDefault", {"sseAlgorithm": "AES256"})),
    Mutation("bucket on the AWS-managed key", "s3-bucket-customer-managed-key", ENCRYPTION, "audit",
             edit=set_path("rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", "alias/aws/s3")),
    Mutation("bucket key off", "s3-bucket-key-enabled", ENCRYPTION, "archive",
             edit=set_path("rules.0.bucketKeyEnabled", False)),
    Mutation("log group unencrypted", "cloudwatch-log-group-customer-managed-key", LOG_GROUP, "processing",
             edit=set_path("kmsKeyId", DELETE)),
    Mutation("alarm topic unencrypted", "sns-topic-customer-managed-key", "aws:sns/topic:Topic",
             edit=set_path("kmsMasterKeyId", DELETE)),
    Mutation("trail unencrypted", "cloudtrail-trail-customer-managed-key", TRAIL, edit=set_path("kmsKeyId", DELETE)),
    Mutation("function environment on the default key", "lambda-function-environment-customer-managed-key",
             FUNCTION, edit=set_path("kmsKeyArn", DELETE)),
    Mutation("key rotation off", "kms-key-rotation-enabled", KEY, edit=set_path("enableKeyRotation", False)),
    # Retention and recovery
    Mutation("shorten a log retention", "cloudwatch-log-group-retention", LOG_GROUP, "processing",
             edit=set_path("retentionInDays", 1)),
    Mutation("log retention forever", "cloudwatch-log-group-retention", LOG_GROUP, "rule-errors",
             edit=set_path("retentionInDays", DELETE)),
    Mutation("log retention CloudWatch refuses", "cloudwatch-log-group-retention", LOG_GROUP, "processing",
             edit=set_path("retentionInDays", 45)),
    Mutation("turn off point-in-time recovery", "dynamodb-table-point-in-time-recovery", TABLE,
             edit=set_path("pointInTimeRecovery.enabled", False)),
    Mutation("suspend versioning", "s3-bucket-versioning-enabled", "aws:s3/bucketVersioning:BucketVersioning",
             "archive", edit=set_path("versioningConfiguration.status", "Suspended")),
    Mutation("archive to Glacier after 400 days", "s3-bucket-lifecycle-archive-transition",
             "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "archive",
             edit=set_path("rules.0.transitions.0.days", 400)),
    Mutation("disable the lifecycle rule", "s3-bucket-lifecycle-archive-transition",
             "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "audit",
             edit=set_path("rules.0.status", "Disabled")),
    # Tagging
    Mutation("remove a tag", "aws-resource-required-tags", TABLE, edit=lambda p: p["tags"].pop("Owner")),
    Mutation("empty a tag", "aws-resource-required-tags", STREAM, edit=set_path("tags.CostCenter", " ")),
    Mutation("untag an alarm", "aws-resource-required-tags", ALARM, edit=set_path("tags", DELETE)),
    # Access
    Mutation("add a wildcard action to an IAM policy", "iam-policy-no-wildcard-action", ROLE_POLICY, "processing",
             edit=add_statement("policy", allow(["s3:*"], ["arn:aws:s3:::elsewhere/*"]))),
    Mutation("widen an IAM action to a prefix", "iam-policy-no-wildcard-action", ROLE_POLICY, "rule-role",
             edit=update_statement("policy", 0, Action=["kinesis:Put*"])),
    Mutation("grant an IAM action on every resource", "iam-policy-no-wildcard-resource", ROLE_POLICY, "processing",
             edit=update_statement("policy", 0, Resource="*")),
    Mutation("attach AdministratorAccess to a role", "iam-policy-attachment-no-admin-managed-policy", ROLE,
             "processing", add=("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin",
                                {"role": "iot-lambda-role-dev",
                                 "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})),
    Mutation("trust any principal", "aws-policy-no-public-principal", ROLE, "processing",
             edit=update_statement("assumeRolePolicy", 0, Principal={"AWS": "*"})),
    Mutation("add a wildcard action to the IoT policy", "iot-policy-no-wildcard-action", IOT_POLICY,
             edit=update_statement("policy", 1, Action=["iot:*"])),
    Mutation("let the IoT policy publish to any telemetry topic", "iot-policy-thing-scoped", IOT_POLICY,
             edit=update_statement("policy", 1,
                                   Resource=["arn:aws:iot:ap-southeast-1:123456789012:topic/factory/telemetry/*"])),
    Mutation("let any client id connect", "iot-policy-thing-scoped", IOT_POLICY,
             edit=update_statement("policy", 0, Resource="*")),
    Mutation("wildcard action in a key policy service statement", "kms-key-policy-no-wildcard-action", KEY,
             edit=update_statement("policy", 1, Action=["kms:*"])),
    Mutation("let CloudWatch Logs use the key for every log group", "kms-key-policy-service-scoped", KEY,
             edit=scope_service_grant("logs.", {"ArnLike": {
                 "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:ap-southeast-1:123456789012:log-group:*"}})),
    Mutation("let CloudWatch use the key for every alarm", "kms-key-policy-service-scoped", KEY,
             edit=scope_service_grant("cloudwatch.", {
                 "StringEquals": {"aws:SourceAccount": "123456789012"},
                 "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:*"}})),
    Mutation("bypass the key policy lock-out check", "kms-key-lockout-safety-check", KEY,
             edit=set_path("bypassPolicyLockoutSafetyCheck", True)),
    Mutation("wildcard action in the alarm topic policy", "aws-resource-policy-no-wildcard-action",
             "aws:sns/topicPolicy:TopicPolicy", edit=update_statement("policy", 0, Action=["SNS:*"])),
    Mutation("open a bucket's public access block", "s3-bucket-public-access-block",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "archive",
             edit=set_path("blockPublicPolicy", False)),
    Mutation("stop ignoring public ACLs", "s3-bucket-public-access-block",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "audit", edit=set_path("ignorePublicAcls", False)),
    Mutation("remove the TLS-only deny", "s3-bucket-policy-deny-insecure-transport", BUCKET_POLICY, "archive",
             edit=edit_statements("policy", lambda statements: statements.pop(0))),
    Mutation("grant the world read access", "aws-policy-no-public-principal", BUCKET_POLICY, "archive",
             edit=add_statement("policy", allow(["s3:GetObject"], ["arn:aws:s3:::x/*"], Principal="*"))),
    Mutation("let a role write into the access log bucket", "s3-bucket-sse-s3-only-for-access-logs", BUCKET_POLICY,
             "access-logs", edit=add_statement("policy", allow(
                 ["s3:PutObject"], ["arn:aws:s3:::x/*"], Principal={"AWS": "arn:aws:iam::123456789012:role/any"}))),
    Mutation("stop logging the archive's requests", "s3-bucket-server-access-logging",
             "aws:s3/bucketLogging:BucketLogging", "archive", remove=True),
    Mutation("re-enable bucket ACLs", "s3-bucket-ownership-enforced",
             "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "archive",
             edit=set_path("rule.objectOwnership", "ObjectWriter")),
    Mutation("public-read ACL on a bucket", "s3-bucket-no-public-acl", BUCKET, "archive",
             add=("aws:s3/bucketAcl:BucketAcl", "public-read", {"bucket": "archive", "acl": "public-read"})),
    Mutation("add a public function URL", "lambda-function-url-no-public-access", FUNCTION,
             add=("aws:lambda/functionUrl:FunctionUrl", "public-url",
                  {"functionName": "iot-processor-dev", "authorizationType": "NONE"})),
    Mutation("let anyone invoke the function", "lambda-permission-no-public-principal", FUNCTION,
             add=("aws:lambda/permission:Permission", "anyone",
                  {"function": "iot-processor-dev", "action": "lambda:InvokeFunction", "principal": "*"})),
    Mutation("let S3 of any account invoke the function", "lambda-permission-source-scoped", FUNCTION,
             add=("aws:lambda/permission:Permission", "any-bucket",
                  {"function": "iot-processor-dev", "action": "lambda:InvokeFunction",
                   "principal": "s3.amazonaws.com"})),
    # Reliability and audit
    Mutation("remove the rule's error action", "iot-topic-rule-error-action", RULE, edit=set_path("errorAction", DELETE)),
    Mutation("rule on SQL 2015-10-08", "iot-topic-rule-sql-version", RULE, edit=set_path("sqlVersion", "2015-10-08")),
    Mutation("disable the topic rule", "iot-topic-rule-enabled", RULE, edit=set_path("enabled", False)),
    Mutation("mapping without partial batch responses", "lambda-event-source-mapping-partial-batch-response",
             MAPPING, edit=set_path("functionResponseTypes", DELETE)),
    Mutation("mapping retries forever", "lambda-event-source-mapping-bounded-retries", MAPPING,
             edit=set_path("maximumRetryAttempts", -1)),
    Mutation("mapping keeps records forever", "lambda-event-source-mapping-bounded-record-age", MAPPING,
             edit=set_path("maximumRecordAgeInSeconds", -1)),
    Mutation("mapping does not bisect", "lambda-event-source-mapping-bisect", MAPPING,
             edit=set_path("bisectBatchOnFunctionError", DELETE)),
    Mutation("mapping without on-failure destination", "lambda-event-source-mapping-failure-destination", MAPPING,
             edit=set_path("destinationConfig", DELETE)),
    Mutation("disable the mapping", "lambda-event-source-mapping-enabled", MAPPING, edit=set_path("enabled", False)),
    Mutation("function on python3.9", "lambda-function-supported-runtime", FUNCTION,
             edit=set_path("runtime", "python3.9")),
    Mutation("alarm without actions", "cloudwatch-metric-alarm-actions", ALARM, "iterator-age",
             edit=set_path("alarmActions", DELETE)),
    Mutation("alarm actions disabled", "cloudwatch-metric-alarm-actions", ALARM, "processor-errors",
             edit=set_path("actionsEnabled", False)),
    Mutation("IoT logging switched off", "iot-logging-options-enabled", FUNCTION,
             add=("aws:iot/loggingOptions:LoggingOptions", "iot-logging",
                  {"defaultLogLevel": "DISABLED", "roleArn": "arn:aws:iam::123456789012:role/iot-logging"})),
    Mutation("single-region trail", "cloudtrail-trail-multi-region", TRAIL, edit=set_path("isMultiRegionTrail", False)),
    Mutation("trail without global service events", "cloudtrail-trail-multi-region", TRAIL,
             edit=set_path("includeGlobalServiceEvents", False)),
    Mutation("trail without log file validation", "cloudtrail-trail-log-file-validation", TRAIL,
             edit=set_path("enableLogFileValidation", DELETE)),
    Mutation("trail stopped", "cloudtrail-trail-logging-enabled", TRAIL, edit=set_path("enableLogging", False)),
    Mutation("trail without CloudWatch Logs delivery", "cloudtrail-trail-cloudwatch-logs", TRAIL,
             edit=set_path("cloudWatchLogsGroupArn", DELETE)),
    Mutation("reserve no concurrency for the function", "lambda-function-reserved-concurrency", FUNCTION,
             edit=set_path("reservedConcurrentExecutions", 0), level="advisory"),
    Mutation("stop watching root account use", "cloudtrail-cis-metric-alarms",
             "aws:cloudwatch/logMetricFilter:LogMetricFilter", "root-account-use", remove=True),
    Mutation("delete the IAM policy change alarm", "cloudtrail-cis-metric-alarms", ALARM, "audit-iam-policy-changes",
             remove=True),
    Mutation("trail without Insights", "cloudtrail-trail-insights", TRAIL, edit=set_path("insightSelectors", DELETE)),
    # Stack-level
    Mutation("delete a bucket's public access block", "s3-bucket-companion-resources",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "audit", remove=True),
    Mutation("delete a bucket's encryption", "s3-bucket-companion-resources", ENCRYPTION, "archive", remove=True),
    Mutation("delete the function's log group", "lambda-function-log-group", LOG_GROUP, "processing", remove=True),
    Mutation("encrypt the stream with another account's key", "kms-key-from-this-stack", STREAM,
             edit=set_path("kmsKeyId", "arn:aws:kms:ap-southeast-1:999999999999:key/foreign")),
]


def _replace_properties(resource: RegisteredResource, properties: dict) -> RegisteredResource:
    """The resource with new wire properties; a property set to a literal no longer depends on anything."""
    original = json_format.MessageToDict(resource.wire_inputs)
    unchanged = {key for key in properties if key in original and original[key] == properties[key]}
    dependencies = {key: urns for key, urns in resource.property_dependencies.items() if key in unchanged}
    return dataclasses.replace(resource, wire_inputs=struct(properties), inputs=properties,
                               property_dependencies=dependencies)


def apply(mutation: Mutation, resources: list[RegisteredResource]) -> tuple[list[RegisteredResource], str]:
    """The resources with the mutation applied, and the URN of the resource it should be reported on."""
    targets = [r for r in resources if r.type == mutation.resource_type and mutation.name_contains in r.name]
    if not targets:
        raise LookupError(f"mutation {mutation.name!r}: no {mutation.resource_type} named *{mutation.name_contains}*")
    target = targets[0]
    if mutation.remove:
        return [r for r in resources if r is not target], ""
    if mutation.add is not None:
        type_token, name, properties = mutation.add
        urn = f"{target.urn.rsplit('::', 2)[0]}::{type_token}::{name}"
        added = dataclasses.replace(target, urn=urn, type=type_token, name=name, dependencies=[],
                                    property_dependencies={}, wire_inputs=struct(properties), inputs=properties)
        return [*resources, added], urn
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


def run_mutations(run: ProgramRun, mutations: Sequence[Mutation] = MUTATIONS,
                  default_levels: bool = False) -> list[MutationResult]:
    """Each mutation through the whole check: Analyze of every resource, then AnalyzeStack.

    With `default_levels`, the pack gets no configuration (its own levels and
    settings); otherwise the stack's shipped one. An unchanged resource gets the
    same verdict as in the unmutated run, so only the resources a mutation
    touched are analyzed again.
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


def markdown_table(results: list[MutationResult]) -> str:
    lines = ["| mutation | resource | intended policy | level | caught |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        m = result.mutation
        if not result.applicable:
            verdict = "n/a (unknown in a first preview)"
        else:
            verdict = "yes" if result.caught else "NO (" + (", ".join(result.reported) or "nothing") + ")"
        lines.append(f"| {m.name} | `{m.resource_type.rsplit(':', 1)[-1]}` | `{m.policy}` | {m.level} | {verdict} |")
    applicable = [r for r in results if r.applicable]
    lines.append("")
    lines.append(f"{sum(r.caught for r in applicable)} of {len(applicable)} applicable mutations caught by the "
                 f"intended policy ({len(results) - len(applicable)} not applicable).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policycheck.mutations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--preview", action="store_true", help="mutate a first preview instead of an update")
    parser.add_argument("--default-levels", action="store_true",
                        help="configure the pack with nothing (its default levels) instead of the stack's config")
    args = parser.parse_args(argv)
    results = run_mutations(run_program(args.stack, preview=args.preview), default_levels=args.default_levels)
    print(markdown_table(results))
    return 0 if all(r.caught for r in results if r.applicable) else 1


if __name__ == "__main__":
    sys.exit(main())
