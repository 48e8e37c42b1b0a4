"""The required-tags policy: own tags, provider default tags, untaggable types, unknown tags."""

import subprocess
import sys

from harness.stack_config import PROJECT_DIR
from tests.policies.conftest import TAGS, UNKNOWN, assert_verdicts, aws_provider, fails, passes

POLICY = "aws-resource-required-tags"
WITHOUT_OWNER = {key: value for key, value in TAGS.items() if key != "Owner"}


def test_taggable_resource_needs_every_required_tag_with_a_value(analyzer):
    assert_verdicts(analyzer, POLICY, "aws:kinesis/stream:Stream", [
        passes("tagged", {"tags": TAGS}),
        passes("unknown-tags", {"tags": UNKNOWN}),
        passes("unknown-value", {"tags": {**TAGS, "Owner": UNKNOWN}}),
        fails("untagged", {}),
        fails("missing-owner", {"tags": WITHOUT_OWNER}),
        fails("empty-owner", {"tags": {**TAGS, "Owner": ""}}),
        fails("blank-owner", {"tags": {**TAGS, "Owner": "  "}}),
    ])


def test_untaggable_types_are_not_checked(analyzer):
    assert_verdicts(analyzer, POLICY, "aws:iot/thing:Thing", [passes("thing", {"name": "press-001"})])
    assert_verdicts(analyzer, POLICY, "aws:iam/rolePolicy:RolePolicy", [passes("role-policy", {"policy": "{}"})])
    assert_verdicts(analyzer, POLICY, "random:index/randomId:RandomId", [passes("not-aws", {"tags": {}})])


def test_every_type_with_a_tags_input_is_checked(analyzer):
    # Not in the program, but taggable in pulumi-aws: the generated list covers it.
    assert_verdicts(analyzer, POLICY, "aws:ecr/repository:Repository", [fails("untagged-repository", {})])


def test_provider_default_tags_count(analyzer):
    """Tags the provider adds (sent JSON-encoded, as the engine sends provider inputs) are no violation."""
    tagging_provider = aws_provider(region="ap-southeast-1", defaultTags={"tags": TAGS})
    assert_verdicts(analyzer, POLICY, "aws:dynamodb/table:Table", [
        passes("untagged-under-tagging-provider", {}),
        passes("partly-tagged-under-tagging-provider", {"tags": {"Owner": "team"}}),
        fails("empties-a-provider-tag", {"tags": {"Owner": ""}}),
    ], provider=tagging_provider)
    partial_provider = aws_provider(defaultTags={"tags": WITHOUT_OWNER})
    assert_verdicts(analyzer, POLICY, "aws:dynamodb/table:Table", [
        passes("adds-the-missing-tag", {"tags": {"Owner": "team"}}),
        fails("provider-lacks-owner", {}),
    ], provider=partial_provider)


def test_generated_taggable_types_match_the_installed_provider():
    result = subprocess.run([sys.executable, "-m", "policycheck.taggable_types", "--check"], cwd=PROJECT_DIR,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
