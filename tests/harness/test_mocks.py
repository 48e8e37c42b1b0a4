"""The mocks record what the engine would see: URNs in the engine's form and each resource's aliases
as the engine resolves them (a resource that moves keeps its state through them)."""

import textwrap

import pytest

from harness.mocks import run_program
from harness.stack_config import project_name

TOPIC = "aws:sns/topic:Topic"
BOX = "test:index:Box"

# A small program of its own: a component that holds a topic, moved and renamed in the ways aliases cover.
PROGRAM = textwrap.dedent('''
    import pulumi
    import pulumi_aws as aws

    class Box(pulumi.ComponentResource):
        def __init__(self, name, opts=None, topic_opts=None):
            super().__init__("test:index:Box", name, None, opts)
            aws.sns.Topic(f"{name}-topic", opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self), topic_opts))

    # Was declared at the top level before it moved into a component.
    Box("moved", topic_opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]))
    # Was named "old-name" (and the topic "old-name-topic", which its new name derives from).
    Box("new-name", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old-name")]))
    # An alias given as a URN, taken as written.
    aws.sns.Topic("by-urn", opts=pulumi.ResourceOptions(
        aliases=["urn:pulumi:dev::elsewhere::aws:sns/topic:Topic::before"]))
    Box("outer", opts=pulumi.ResourceOptions(parent=Box("nesting")))
    aws.sns.Topic("unaliased")
''')


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    program = tmp_path_factory.mktemp("program") / "__main__.py"
    program.write_text(PROGRAM)
    return run_program("dev", program=program)


def urn(qualified_type: str, name: str) -> str:
    return f"urn:pulumi:dev::{project_name()}::{qualified_type}::{name}"


def test_urns_carry_the_whole_parent_type_chain_and_no_stack_type(run):
    assert run.one(TOPIC, "unaliased").urn == urn(TOPIC, "unaliased")
    assert run.one(BOX, "outer").urn == urn(f"{BOX}${BOX}", "outer")
    assert run.one(TOPIC, "outer-topic").urn == urn(f"{BOX}${BOX}${TOPIC}", "outer-topic")


def test_a_resource_without_aliases_has_none(run):
    assert run.one(TOPIC, "unaliased").aliases == []
    assert run.one(TOPIC, "outer-topic").aliases == []


def test_an_alias_urn_is_recorded_as_given(run):
    assert run.one(TOPIC, "by-urn").aliases == ["urn:pulumi:dev::elsewhere::aws:sns/topic:Topic::before"]


def test_a_resource_moved_under_a_component_is_aliased_to_its_top_level_urn(run):
    topic = run.one(TOPIC, "moved-topic")
    assert topic.urn == urn(f"{BOX}${TOPIC}", "moved-topic")
    assert topic.aliases == [urn(TOPIC, "moved-topic")]


def test_a_renamed_component_aliases_itself_and_its_children_to_their_old_urns(run):
    assert run.one(BOX, "new-name").aliases == [urn(BOX, "old-name")]
    # Inherited as the engine does: under the parent's old URN, the name's prefix renamed with it.
    assert run.one(TOPIC, "new-name-topic").aliases == [urn(f"{BOX}${TOPIC}", "old-name-topic")]
