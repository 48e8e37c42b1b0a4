"""Public-access policies: the exact fixtures each fails."""

import pytest

from tests.policies.conftest import UNKNOWN, PolicyCases, allow, check_policy_cases, doc, fails, passes

TLS_DENY = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
ALL_BLOCKED = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
               "restrictPublicBuckets": True}
SERVICE = {"Service": "cloudtrail.amazonaws.com"}
LAMBDA_TRUST = doc(allow(["sts:AssumeRole"], [], Principal={"Service": "lambda.amazonaws.com"}))

CASES = [
    PolicyCases("aws-policy-no-public-principal", "aws:s3/bucketPolicy:BucketPolicy", [
        passes("service", {"policy": doc(TLS_DENY, allow(["s3:PutObject"], Principal=SERVICE))}),
        passes("unknown", {"policy": UNKNOWN}),
        fails("star", {"policy": doc(allow(["s3:GetObject"], Principal="*"))}),
        fails("aws-star", {"policy": doc(allow(["s3:GetObject"], Principal={"AWS": "*"}))}),
        fails("aws-star-in-list", {"policy": doc(allow(["s3:GetObject"], Principal={"AWS": ["arn:aws:iam::1:root", "*"]}))}),
        fails("not-principal", {"policy": doc(allow(["s3:GetObject"], NotPrincipal={"AWS": "arn:aws:iam::1:root"}))}),
    ]),
    PolicyCases("aws-policy-no-public-principal", "aws:iam/role:Role", [
        passes("service-trust", {"assumeRolePolicy": LAMBDA_TRUST}),
        fails("anyone-trust", {"assumeRolePolicy": doc(allow(["sts:AssumeRole"], [], Principal={"AWS": "*"}))}),
    ]),
    PolicyCases("aws-policy-no-public-principal", "aws:sns/topicPolicy:TopicPolicy", [
        fails("public-topic", {"policy": doc(allow(["sns:Publish"], ["arn:aws:sns:r:1:t"], Principal="*"))}),
    ]),
    PolicyCases("s3-bucket-public-access-block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", [
        passes("all-blocked", ALL_BLOCKED),
        passes("unknown-flag", {**ALL_BLOCKED, "blockPublicPolicy": UNKNOWN}),
        fails("policy-open", {**ALL_BLOCKED, "blockPublicPolicy": False}),
        fails("acls-not-ignored", {**ALL_BLOCKED, "ignorePublicAcls": False}),
        fails("only-one-set", {"blockPublicAcls": True}),
    ]),
    PolicyCases("s3-bucket-policy-deny-insecure-transport", "aws:s3/bucketPolicy:BucketPolicy", [
        passes("tls-deny", {"policy": doc(TLS_DENY)}),
        passes("unknown", {"policy": UNKNOWN}),
        fails("no-deny", {"policy": doc(allow(["s3:GetObject"], Principal=SERVICE))}),
        fails("objects-only", {"policy": doc({**TLS_DENY, "Resource": ["arn:aws:s3:::b/*"]})}),
        fails("allow-not-deny", {"policy": doc({**TLS_DENY, "Effect": "Allow"})}),
    ]),
    PolicyCases("s3-bucket-ownership-enforced", "aws:s3/bucketOwnershipControls:BucketOwnershipControls", [
        passes("enforced", {"rule": {"objectOwnership": "BucketOwnerEnforced"}}),
        fails("object-writer", {"rule": {"objectOwnership": "ObjectWriter"}}),
        fails("preferred", {"rule": {"objectOwnership": "BucketOwnerPreferred"}}),
    ]),
    PolicyCases("s3-bucket-no-public-acl", "aws:s3/bucketAcl:BucketAcl", [
        passes("private", {"acl": "private"}),
        fails("public-read", {"acl": "public-read"}),
        fails("all-users-grant", {"accessControlPolicy": {"grants": [{
            "permission": "READ", "grantee": {"type": "Group",
                                              "uri": "http://acs.amazonaws.com/groups/global/AllUsers"}}]}}),
    ]),
    PolicyCases("s3-bucket-no-public-acl", "aws:s3/bucket:Bucket", [
        passes("no-acl", {"bucketPrefix": "b-"}), fails("inline-public-read-write", {"acl": "public-read-write"}),
    ]),
    PolicyCases("lambda-function-url-no-public-access", "aws:lambda/functionUrl:FunctionUrl", [
        passes("iam", {"authorizationType": "AWS_IAM"}), fails("open", {"authorizationType": "NONE"}),
    ]),
    PolicyCases("lambda-permission-no-public-principal", "aws:lambda/permission:Permission", [
        passes("service", {"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::b"}),
        fails("anyone", {"principal": "*"}),
        fails("public-url", {"principal": "arn:aws:iam::1:root", "functionUrlAuthType": "NONE"}),
    ]),
    PolicyCases("lambda-permission-source-scoped", "aws:lambda/permission:Permission", [
        passes("source-arn", {"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::b"}),
        passes("source-account", {"principal": "events.amazonaws.com", "sourceAccount": "123456789012"}),
        passes("unknown-source", {"principal": "s3.amazonaws.com", "sourceArn": UNKNOWN}),
        passes("account-principal", {"principal": "123456789012"}),
        fails("unscoped-service", {"principal": "s3.amazonaws.com"}),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)
