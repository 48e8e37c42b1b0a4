"""Least privilege: exact actions everywhere, one sanctioned wildcard (the key's administration)."""

import json


from components.processing import XRAY_WRITE_ACTIONS
from harness.mocks import RegisteredResource

POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iot/policy:Policy": "policy",
    "aws:kms/key:Key": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
}


def _documents(run) -> list[tuple[RegisteredResource, dict]]:
    found = []
    for resource in run.resources:
        if resource.type in POLICY_INPUTS:
            found.append((resource, json.loads(resource.inputs[POLICY_INPUTS[resource.type]])))
    return found


def test_policies_are_found(dev):
    assert len(_documents(dev)) >= 10


def test_no_allow_statement_has_a_wildcard_action(dev):
    for resource, document in _documents(dev):
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue  # a Deny on s3:* is the strongest form of the TLS-only rule
            if resource.type == "aws:kms/key:Key" and statement["Sid"] == "AccountAdministration":
                continue  # the one sanctioned wildcard: without it AWS refuses the key policy
            for action in statement["Action"]:
                assert "*" not in action, f"{resource.urn}: statement {statement['Sid']} allows {action}"


def test_iam_role_policies_name_exact_resources(dev):
    for resource, document in _documents(dev):
        if resource.type != "aws:iam/rolePolicy:RolePolicy":
            continue
        for statement in document["Statement"]:
            resources = statement["Resource"]
            if resources == "*" and set(statement["Action"]) <= set(XRAY_WRITE_ACTIONS):
                continue  # the documented exception: X-Ray's writes authorize on no resource
            assert resources and "*" not in resources, f"{resource.urn}: {statement['Sid']} on {resources}"
            for arn in resources:
                assert arn.startswith("arn:aws:"), f"{resource.urn}: {statement['Sid']} names {arn!r}"


def test_no_allow_statement_has_a_wildcard_principal(dev):
    for resource, document in _documents(dev):
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow" and "Principal" in statement:
                principal = statement["Principal"]
                assert principal != "*" and "*" not in principal.values(), f"{resource.urn}: {statement['Sid']}"


def test_no_public_function_url_or_permission(dev):
    assert dev.of_type("aws:lambda/functionUrl:FunctionUrl") == []
    for permission in dev.of_type("aws:lambda/permission:Permission"):
        assert permission.inputs.get("principal") != "*", permission.urn
