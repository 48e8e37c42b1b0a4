"""The query layer's resources under the pack: the Athena workgroup's result encryption and
enforced configuration, the stack-key rule, and required tags on the Glue database,
workgroup and analyst role and policy."""

import pytest

from tests.policies.conftest import (KEY_ARN, TAGS, UNKNOWN, PolicyCases, assert_verdicts, check_policy_cases,
                                     fails, passes, resource)
from tests.policies.test_stack import assert_stack_fails

WORKGROUP = "aws:athena/workgroup:Workgroup"


def workgroup(option="SSE_KMS", key=KEY_ARN, enforce=True, **configuration):
    encryption = {**({"encryptionOption": option} if option is not None else {}),
                  **({"kmsKeyArn": key} if key is not None else {})}
    return {"configuration": {
        **({"enforceWorkgroupConfiguration": enforce} if enforce is not None else {}),
        "resultConfiguration": {"outputLocation": "s3://bucket/athena-results/", "encryptionConfiguration": encryption},
        **configuration,
    }}


CASES = [
    PolicyCases("athena-workgroup-customer-managed-key", WORKGROUP, [
        passes("sse-kms-stack-key", workgroup()),
        passes("cse-kms-stack-key", workgroup(option="CSE_KMS")),
        passes("unknown-key", workgroup(key=UNKNOWN)),
        passes("unknown-option", workgroup(option=UNKNOWN)),
        passes("unknown-configuration", {"configuration": UNKNOWN}),
        fails("no-configuration", {"name": "wg"}),
        fails("no-encryption", {"configuration": {"resultConfiguration": {"outputLocation": "s3://b/r/"}}}),
        fails("sse-s3", workgroup(option="SSE_S3", key=None)),
        fails("sse-kms-without-key", workgroup(key=None)),
        fails("aws-managed-alias", workgroup(key="alias/aws/s3")),
    ]),
    PolicyCases("athena-workgroup-enforce-configuration", WORKGROUP, [
        passes("enforced", workgroup()),
        passes("default-is-enforced", workgroup(enforce=None)),
        passes("unknown", workgroup(enforce=UNKNOWN)),
        fails("client-may-override", workgroup(enforce=False)),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)


@pytest.mark.parametrize("type_token", [
    WORKGROUP, "aws:glue/catalogDatabase:CatalogDatabase", "aws:iam/policy:Policy", "aws:iam/role:Role",
])
def test_query_layer_resources_need_the_required_tags(analyzer, type_token):
    assert_verdicts(analyzer, "aws-resource-required-tags", type_token, [
        passes("tagged", {"name": "x", "tags": TAGS}),
        fails("untagged", {"name": "x"}),
    ])


def test_glue_tables_and_named_queries_take_no_tags(analyzer):
    # Neither type has a `tags` input in pulumi-aws: nothing to require.
    assert_verdicts(analyzer, "aws-resource-required-tags", "aws:glue/catalogTable:CatalogTable",
                    [passes("table", {"name": "readings", "databaseName": "db"})])
    assert_verdicts(analyzer, "aws-resource-required-tags", "aws:athena/namedQuery:NamedQuery",
                    [passes("named-query", {"name": "q", "query": "SELECT 1", "database": "db"})])


def test_workgroup_results_must_use_a_key_of_this_stack(analyzer):
    key = resource("aws:kms/key:Key", "key", {"enableKeyRotation": True})
    resources = [
        key,
        resource(WORKGROUP, "our-key", workgroup(key=UNKNOWN), property_dependencies={"configuration": [key.urn]}),
        resource(WORKGROUP, "foreign-key", workgroup(key="arn:aws:kms:ap-southeast-1:999999999999:key/x")),
    ]
    assert_stack_fails(analyzer, "kms-key-from-this-stack", resources, {"foreign-key"})
