"""Inject misconfigurations into the real program's resources and see whether the
policy check catches each with the intended policy.

    python -m offline.mutations [--stack dev] [--mode preview|update]

prints a Markdown table of mutations, the policy expected to catch each, and
whether it did; exits 1 if any mutation went uncaught.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from typing import Callable, Sequence

from google.protobuf import json_format, struct_pb2

from offline.analyzer import PolicyAnalyzer, Violation
from offline.mocks import RegisteredResource, run_program
from offline.policy_check import analyzed_resources, check_resources, default_policy_config, provider_info
from offline.stack_config import project_name

Edit = Callable[[dict], None]


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    policy: str
    resource_type: str
    # A part of the resource's name, to pick one of several of its type.
    name_contains: str = ""
    edit: Edit | None = None
    remove: bool = False
    add: dict | None = None


def _policy_edit(path: str, change: Callable[[list], None]) -> Edit:
    """Edit the statements of the JSON policy document at property `path`."""
    def edit(properties: dict) -> None:
        document = json.loads(properties[path])
        change(document["Statement"])
        properties[path] = json.dumps(document)
    return edit


def _set(path: str, value) -> Edit:
    def edit(properties: dict) -> None:
        *parents, last = path.split(".")
        target = properties
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is _DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return edit


_DELETE = object()
STREAM = "aws:kinesis/stream:Stream"
TABLE = "aws:dynamodb/table:Table"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
TRAIL = "aws:cloudtrail/trail:Trail"
RULE = "aws:iot/topicRule:TopicRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"

MUTATIONS: list[Mutation] = [
    Mutation("drop the stream's encryption", "kinesis-stream-customer-managed-key", STREAM,
             edit=lambda p: [p.pop("encryptionType", None), p.pop("kmsKeyId", None)]),
    Mutation("stream on the AWS-managed key", "kinesis-stream-customer-managed-key", STREAM,
             edit=_set("kmsKeyId", "alias/aws/kinesis")),
    Mutation("table on the AWS-owned key", "dynamodb-table-customer-managed-key", TABLE,
             edit=_set("serverSideEncryption", _DELETE)),
    Mutation("table on the AWS-managed key", "dynamodb-table-customer-managed-key", TABLE,
             edit=_set("serverSideEncryption.kmsKeyArn", _DELETE)),
    Mutation("bucket encrypted with SSE-S3", "s3-bucket-customer-managed-key", ENCRYPTION, "archive",
             edit=_set("rules.0.applyServerSideEncryptionByDefault", {"sseAlgorithm": "AES256"})),
    Mutation("bucket key off", "s3-bucket-customer-managed-key", ENCRYPTION, "archive",
             edit=_set("rules.0.bucketKeyEnabled", False)),
    Mutation("log group unencrypted", "cloudwatch-log-group-customer-managed-key", LOG_GROUP, "processing",
             edit=_set("kmsKeyId", _DELETE)),
    Mutation("trail unencrypted", "cloudtrail-trail-customer-managed-key", TRAIL, edit=_set("kmsKeyId", _DELETE)),
    Mutation("function environment on the default key", "lambda-function-environment-customer-managed-key",
             "aws:lambda/function:Function", edit=_set("kmsKeyArn", _DELETE)),
    Mutation("key rotation off", "kms-key-rotation-enabled", "aws:kms/key:Key", edit=_set("enableKeyRotation", False)),
    Mutation("shorten a log retention", "cloudwatch-log-group-retention", LOG_GROUP, "processing",
             edit=_set("retentionInDays", 1)),
    Mutation("log retention forever", "cloudwatch-log-group-retention", LOG_GROUP, "rule-errors",
             edit=_set("retentionInDays", _DELETE)),
    Mutation("turn off point-in-time recovery", "dynamodb-table-point-in-time-recovery", TABLE,
             edit=_set("pointInTimeRecovery.enabled", False)),
    Mutation("suspend versioning", "s3-bucket-versioning-enabled", "aws:s3/bucketVersioning:BucketVersioning",
             "archive", edit=_set("versioningConfiguration.status", "Suspended")),
    Mutation("archive to Glacier after 400 days", "s3-bucket-lifecycle-archive-transition",
             "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "archive",
             edit=_set("rules.0.transitions.0.days", 400)),
    Mutation("remove a tag", "aws-resource-required-tags", TABLE, edit=lambda p: p["tags"].pop("Owner")),
    Mutation("empty a tag", "aws-resource-required-tags", STREAM, edit=_set("tags.CostCenter", " ")),
    Mutation("add a wildcard action to an IAM policy", "iam-policy-no-wildcard-action",
             "aws:iam/rolePolicy:RolePolicy", "processing",
             edit=_policy_edit("policy", lambda s: s.append({"Sid": "Broad", "Effect": "Allow", "Action": ["s3:*"],
                                                            "Resource": ["arn:aws:s3:::x"]}))),
    Mutation("add a wildcard action suffix to an IAM policy", "iam-policy-no-wildcard-action",
             "aws:iam/rolePolicy:RolePolicy", "rule-role",
             edit=_policy_edit("policy", lambda s: s[0].update(Action=["kinesis:Put*"]))),
    Mutation("add a wildcard action to the IoT policy", "iot-policy-no-wildcard-action", "aws:iot/policy:Policy",
             edit=_policy_edit("policy", lambda s: s[1].update(Action=["iot:*"]))),
    Mutation("add a wildcard action to a key policy service statement", "kms-key-policy-no-wildcard-action",
             "aws:kms/key:Key", edit=_policy_edit("policy", lambda s: s[1].update(Action=["kms:*"]))),
    Mutation("let the IoT policy publish anywhere", "iot-policy-thing-scoped", "aws:iot/policy:Policy",
             edit=_policy_edit("policy", lambda s: s[1].update(
                 Resource=["arn:aws:iot:ap-southeast-1:123456789012:topic/factory/telemetry/*"]))),
    Mutation("open a bucket's public access block", "s3-bucket-public-access-block",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "archive",
             edit=_set("blockPublicPolicy", False)),
    Mutation("remove the TLS-only deny", "s3-bucket-policy-deny-insecure-transport", BUCKET_POLICY, "archive",
             edit=_policy_edit("policy", lambda s: s.pop(0))),
    Mutation("grant the world read access", "aws-policy-no-public-principal", BUCKET_POLICY, "archive",
             edit=_policy_edit("policy", lambda s: s.append({"Sid": "Public", "Effect": "Allow", "Principal": "*",
                                                            "Action": ["s3:GetObject"],
                                                            "Resource": ["arn:aws:s3:::x/*"]}))),
    Mutation("remove the rule's error action", "iot-topic-rule-error-action", RULE, edit=_set("errorAction", _DELETE)),
    Mutation("rule on SQL 2015-10-08", "iot-topic-rule-sql-version", RULE, edit=_set("sqlVersion", "2015-10-08")),
    Mutation("mapping without partial batch responses", "lambda-event-source-mapping-partial-batch-response",
             MAPPING, edit=_set("functionResponseTypes", [])),
    Mutation("mapping retries forever", "lambda-event-source-mapping-bounded-retries", MAPPING,
             edit=_set("maximumRetryAttempts", -1)),
    Mutation("mapping keeps records forever", "lambda-event-source-mapping-bounded-retries", MAPPING,
             edit=_set("maximumRecordAgeInSeconds", -1)),
    Mutation("mapping does not bisect", "lambda-event-source-mapping-bisect", MAPPING,
             edit=_set("bisectBatchOnFunctionError", False)),
    Mutation("mapping without on-failure destination", "lambda-event-source-mapping-failure-destination", MAPPING,
             edit=_set("destinationConfig", _DELETE)),
    Mutation("single-region trail", "cloudtrail-trail-multi-region-validated", TRAIL,
             edit=_set("isMultiRegionTrail", False)),
    Mutation("trail without log file validation", "cloudtrail-trail-multi-region-validated", TRAIL,
             edit=_set("enableLogFileValidation", False)),
    Mutation("trail without Insights", "cloudtrail-trail-insights", TRAIL, edit=_set("insightSelectors", _DELETE)),
    Mutation("delete a bucket's public access block", "s3-bucket-companion-resources",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "audit", remove=True),
    Mutation("delete the function's log group", "lambda-function-log-group", LOG_GROUP, "processing", remove=True),
    Mutation("encrypt the stream with a key from elsewhere", "kms-key-from-this-stack", STREAM,
             edit=_set("kmsKeyId", "arn:aws:kms:ap-southeast-1:999999999999:key/foreign")),
    Mutation("add a public function URL", "lambda-function-url-no-public-access", "aws:lambda/function:Function",
             add={"type": "aws:lambda/functionUrl:FunctionUrl", "name": "public-url",
                  "properties": {"functionName": "iot-processor", "authorizationType": "NONE"}}),
    Mutation("let anyone invoke the function", "lambda-permission-no-public-principal",
             "aws:lambda/function:Function",
             add={"type": "aws:lambda/permission:Permission", "name": "anyone",
                  "properties": {"function": "iot-processor", "action": "lambda:InvokeFunction", "principal": "*"}}),
]


def _wire_dict(resource: RegisteredResource) -> dict:
    return json_format.MessageToDict(resource.wire_inputs)


def _with_wire(resource: RegisteredResource, properties: dict, **changes) -> RegisteredResource:
    struct = struct_pb2.Struct()
    json_format.ParseDict(properties, struct)
    # A property edited to a literal no longer depends on the resource it named.
    dependencies = {key: urns for key, urns in resource.property_dependencies.items() if key in properties}
    return dataclasses.replace(resource, wire_inputs=struct, property_dependencies=dependencies, **changes)


def apply(mutation: Mutation, resources: list[RegisteredResource]) -> tuple[list[RegisteredResource], str]:
    """The resources with the mutation applied, and the URN it targeted."""
    targets = [r for r in resources if r.type == mutation.resource_type and mutation.name_contains in r.name]
    if not targets:
        raise LookupError(f"mutation {mutation.name!r}: no {mutation.resource_type} named *{mutation.name_contains}*")
    target = targets[0]
    if mutation.remove:
        return [r for r in resources if r is not target], target.urn
    if mutation.add is not None:
        urn = target.urn.rsplit("::", 2)[0] + f"::{mutation.add['type']}::{mutation.add['name']}"
        added = _with_wire(dataclasses.replace(target, urn=urn, type=mutation.add["type"],
                                               name=mutation.add["name"], property_dependencies={}),
                           mutation.add["properties"])
        return [*resources, added], urn
    properties = copy.deepcopy(_wire_dict(target))
    mutation.edit(properties)
    edited = _with_wire(target, properties)
    if "kmsKeyId" in properties and mutation.policy == "kms-key-from-this-stack":
        edited = dataclasses.replace(edited, property_dependencies={
            key: urns for key, urns in edited.property_dependencies.items() if key != "kmsKeyId"})
    return [edited if r is target else r for r in resources], target.urn


@dataclasses.dataclass
class MutationResult:
    mutation: Mutation
    caught: bool
    reported: list[str]
    # In a first preview a policy document is unknown and cannot be edited.
    applicable: bool = True


def run_mutations(stack: str = "dev", preview: bool = False) -> list[MutationResult]:
    run = run_program(stack, preview=preview)
    baseline = analyzed_resources(run)
    provider = provider_info(run)
    config_path = default_policy_config(stack)
    config = json.loads(config_path.read_text()) if config_path else {}
    results = []
    with PolicyAnalyzer(project_name(), stack, preview) as analyzer:
        analyzer.configure(config)
        for mutation in MUTATIONS:
            try:
                mutated, urn = apply(mutation, baseline)
            except (ValueError, KeyError, TypeError):
                results.append(MutationResult(mutation, caught=False, reported=[], applicable=False))
                continue
            violations: list[Violation] = check_resources(analyzer, mutated, provider)
            mandatory = [v for v in violations if v.level == "mandatory"]
            caught = any(v.policy == mutation.policy and (v.urn in (urn, "") or mutation.remove or mutation.add)
                         for v in mandatory)
            results.append(MutationResult(mutation, caught, sorted({v.policy for v in mandatory})))
    return results


def markdown_table(results: list[MutationResult]) -> str:
    lines = ["| mutation | resource | expected policy | caught |", "| --- | --- | --- | --- |"]
    for result in results:
        m = result.mutation
        verdict = ("yes" if result.caught else "n/a: the property is unknown in a first preview"
                   if not result.applicable else "NO: " + ", ".join(result.reported))
        lines.append(f"| {m.name} | `{m.resource_type.split(':')[-1]}` | `{m.policy}` | {verdict} |")
    applicable = [r for r in results if r.applicable]
    lines.append(f"\n{sum(r.caught for r in applicable)} of {len(applicable)} applicable mutations caught "
                 f"by the intended policy ({len(results) - len(applicable)} not applicable).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.mutations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--mode", choices=["preview", "update"], default="update")
    args = parser.parse_args(argv)
    results = run_mutations(args.stack, preview=args.mode == "preview")
    print(markdown_table(results))
    return 0 if all(r.caught for r in results if r.applicable) else 1


if __name__ == "__main__":
    sys.exit(main())
