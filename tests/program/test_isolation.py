"""Two stacks in one account and region: dev and prod, registering the same devices, share no
physical name, and neither's topic rule selects a topic the other's devices may publish to."""

from __future__ import annotations

import json
import re

import pytest

from handler.message_format import filters_overlap, telemetry_topic, topic_matches_filter
from harness.mocks import ProgramRun, RegisteredResource

DEVICES = ["press-001"]
RULE = "aws:iot/topicRule:TopicRule"
# Inputs that are a resource's own physical name. Side resources of a bucket name it in
# `bucket` too, but that is the bucket's name, not theirs: only a Bucket's `bucket` counts.
NAME_INPUTS = ("name", "namePrefix", "bucketPrefix", "dashboardName")
# Every kind of named resource the program declares must be compared, not only some.
NAMED_TYPES = {
    "aws:iot/thing:Thing", "aws:iot/thingType:ThingType", "aws:iot/policy:Policy", RULE,
    "aws:kinesis/stream:Stream", "aws:dynamodb/table:Table", "aws:lambda/function:Function",
    "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:kms/alias:Alias", "aws:sns/topic:Topic",
    "aws:cloudwatch/dashboard:Dashboard", "aws:s3/bucket:Bucket",
}
POLICY_VARIABLE_OR_WILDCARD = re.compile(r"\$\{|\*|\?")
# Resources whose name is unique only inside another resource: their physical name is scoped by it.
NAME_SCOPES = {"aws:glue/catalogTable:CatalogTable": "databaseName", "aws:athena/namedQuery:NamedQuery": "workgroup"}


@pytest.fixture(scope="module")
def stacks(program_run) -> dict[str, ProgramRun]:
    return {stack: program_run(stack, config_overrides={"devices": DEVICES}) for stack in ("dev", "prod")}


def physical_names(resource: RegisteredResource) -> list[str]:
    keys = NAME_INPUTS + (("bucket",) if resource.type == "aws:s3/bucket:Bucket" else ())
    names = [resource.inputs[key] for key in keys if isinstance(resource.inputs.get(key), str)]
    scope = NAME_SCOPES.get(resource.type)
    return [f"{resource.inputs[scope]}/{name}" for name in names] if scope else names


def named(run: ProgramRun) -> dict[tuple[str, str], RegisteredResource]:
    """{(type, physical name): resource}: names are unique per resource type (an alarm and
    its metric filter may share one)."""
    names: dict[tuple[str, str], RegisteredResource] = {}
    for resource in run.resources:
        if resource.custom:
            for name in physical_names(resource):
                key = (resource.type, name)
                assert key not in names, f"{resource.urn} and {names[key].urn} are both named {name!r}"
                names[key] = resource
    return names


def rule_filter(rule: RegisteredResource) -> str:
    match = re.search(r"FROM '([^']*)'", rule.inputs["sql"])
    assert match, f"{rule.urn}: sql has no FROM '<topic filter>': {rule.inputs['sql']!r}"
    return match.group(1)


def device_topics(run: ProgramRun) -> set[str]:
    """The topics the stack's registered devices publish to, from their things' device ids."""
    suffix = run.config["iot-sensor-pipeline:environmentSuffix"]
    return {telemetry_topic(suffix, thing.inputs["attributes"]["deviceId"])
            for thing in run.of_type("aws:iot/thing:Thing")}


def publishable_filters(run: ProgramRun) -> set[str]:
    """Every topic the stack's device policies let a certificate publish to, as an MQTT filter.

    A policy resource is a pattern in which policy variables and `*` stand for any text,
    `/` included: from the first level holding one, the filter is `#`, a superset.
    """
    filters = set()
    for policy in run.of_type("aws:iot/policy:Policy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] != "Allow" or not any(a in ("iot:Publish", "iot:*", "*") for a in actions):
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                # A resource that names no topic (`*`, say) allows every topic.
                pattern = resource.split(":topic/", 1)[1] if ":topic/" in resource else "#"
                levels = pattern.split("/")
                cut = next((i for i, level in enumerate(levels) if POLICY_VARIABLE_OR_WILDCARD.search(level)),
                           len(levels))
                filters.add("/".join(levels[:cut] + (["#"] if cut < len(levels) else [])))
    return filters


def test_both_stacks_register_the_same_devices_as_distinct_things(stacks):
    for run in stacks.values():
        assert [t.inputs["attributes"]["deviceId"] for t in run.of_type("aws:iot/thing:Thing")] == DEVICES
    assert {t.inputs["name"] for t in stacks["dev"].of_type("aws:iot/thing:Thing")} == {"press-001_dev"}
    assert {t.inputs["name"] for t in stacks["prod"].of_type("aws:iot/thing:Thing")} == {"press-001_prod"}


def test_no_physical_name_in_common(stacks):
    dev, prod = named(stacks["dev"]), named(stacks["prod"])
    for run, names in ((stacks["dev"], dev), (stacks["prod"], prod)):
        missing = NAMED_TYPES - {resource_type for resource_type, _ in names}
        assert not missing, f"{run.stack}: no named resource of type {sorted(missing)}"
    shared = sorted(set(dev) & set(prod))
    assert not shared, "named alike in dev and prod: " + ", ".join(
        f"{key[1]!r} ({dev[key].urn} / {prod[key].urn})" for key in shared)
    # Not even across types (a name is often reused as a prefix or in ARNs elsewhere).
    assert not {name for _, name in dev} & {name for _, name in prod}


def test_no_bucket_prefix_is_the_start_of_the_other_stacks(stacks):
    # Bucket names are the prefix plus a random part: a prefix that starts the other
    # stack's prefix could yield the same name.
    prefixes = {stack: [b.inputs["bucketPrefix"] for b in run.of_type("aws:s3/bucket:Bucket")]
                for stack, run in stacks.items()}
    for mine in prefixes["dev"]:
        for theirs in prefixes["prod"]:
            assert not (mine.startswith(theirs) or theirs.startswith(mine)), (mine, theirs)


@pytest.mark.parametrize("stack, other", [("dev", "prod"), ("prod", "dev")])
def test_rule_selects_none_of_the_other_stacks_device_topics(stacks, stack, other):
    rule = stacks[stack].one(RULE)
    selected = rule_filter(rule)
    theirs_topics, theirs_filters = device_topics(stacks[other]), publishable_filters(stacks[other])
    assert theirs_topics and theirs_filters, f"{other}: no device topics to compare with"
    for topic in theirs_topics:
        assert not topic_matches_filter(topic, selected), f"{rule.urn}: {selected!r} selects {other}'s {topic!r}"
    for publishable in theirs_filters:
        assert not filters_overlap(selected, publishable), (
            f"{rule.urn}: {selected!r} selects topics {other}'s device policy allows ({publishable!r})")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rule_selects_its_own_devices_topics(stacks, stack):
    # The other half of isolation: each stack still ingests its own devices.
    selected = rule_filter(stacks[stack].one(RULE))
    assert all(topic_matches_filter(topic, selected) for topic in device_topics(stacks[stack]))
    assert all(filters_overlap(selected, publishable) for publishable in publishable_filters(stacks[stack]))


def test_a_stacks_alarm_pattern_matches_none_of_another_stacks_alarms():
    """The key policy and the alarm topic trust `alarm_name("*", suffix)`: ArnLike wildcards
    (fnmatch's `*`) must not reach a stack whose suffix ends like this one's."""
    from fnmatch import fnmatchcase

    from components.alarms import alarm_name

    for own, other in (("dev", "team-dev"), ("dev", "dev-2"), ("prod", "preprod"), ("a-b", "b")):
        assert fnmatchcase(alarm_name("iterator-age", own), alarm_name("*", own))
        assert not fnmatchcase(alarm_name("iterator-age", other), alarm_name("*", own)), (own, other)
        assert not fnmatchcase(alarm_name("iterator-age", own), alarm_name("*", other)), (own, other)
