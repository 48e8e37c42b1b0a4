"""The misconfigurations injected into the program to see the pack catch each with its intended policy.

Every target is a part the program's resources play (policycheck/roles.py), found in the run by
type and by what references what; no stack's resource names are written here. The few literal
values are what a mistake would put there: an AWS-managed key, a retention CloudWatch refuses,
another account's key, a role of the account the mocks run as.
"""

from __future__ import annotations

from harness.mocks import MOCK_ACCOUNT_ID
from policycheck.injection import (
    DELETE,
    Addition,
    Mutation,
    add_statement,
    allow,
    drop,
    drop_key,
    edit_statements,
    set_path,
    update_statement,
    widen_policy_variables,
    widen_service_grant,
)
from policycheck.roles import (
    ACCESS_LOG_BUCKET,
    ARCHIVE,
    AUDIT_BUCKET,
    BUCKET_LOGGING,
    PROCESSOR,
    PROCESSOR_LOG_GROUP,
    PROCESSOR_ROLE,
    RULE,
    RULE_ERROR_LOG_GROUP,
    RULE_ROLE,
    TRAIL,
    audit_alarm,
    audit_filter,
    companion,
    processor_alarm,
    role_policy,
    the,
)

STREAM = the("aws:kinesis/stream:Stream")
TABLE = the("aws:dynamodb/table:Table")
MAPPING = the("aws:lambda/eventSourceMapping:EventSourceMapping")
THE_TRAIL = the(TRAIL)
THE_RULE = the(RULE)
KEY = the("aws:kms/key:Key")
ALARM_TOPIC = the("aws:sns/topic:Topic")
ALARM_TOPIC_POLICY = the("aws:sns/topicPolicy:TopicPolicy")
DEVICE_POLICY = the("aws:iot/policy:Policy")

ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"

PROCESSOR_POLICY = role_policy(PROCESSOR_ROLE)
RULE_ROLE_POLICY = role_policy(RULE_ROLE)
ITERATOR_AGE_ALARM = processor_alarm("IteratorAge")
PROCESSOR_ERRORS_ALARM = processor_alarm("Errors")
ROOT_ACCOUNT_USE_FILTER = audit_filter("root account use", '$.userIdentity.type = "Root"')
IAM_POLICY_CHANGES_ALARM = audit_alarm(audit_filter("IAM policy changes", "DeleteGroupPolicy"))

ANOTHER_ACCOUNTS_KEY = "arn:aws:kms:ap-southeast-1:999999999999:key/foreign"
A_ROLE_OF_THE_ACCOUNT = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/any"


def invoke_permission(principal: str) -> dict:
    return {"action": "lambda:InvokeFunction", "principal": principal}


MUTATIONS: list[Mutation] = [
    # Encryption
    Mutation("drop the stream's encryption", "kinesis-stream-customer-managed-key", STREAM,
             edit=drop("encryptionType", "kmsKeyId")),
    Mutation("stream on the AWS-managed key", "kinesis-stream-customer-managed-key", STREAM,
             edit=set_path("kmsKeyId", "alias/aws/kinesis")),
    Mutation("table on the AWS-owned key", "dynamodb-table-customer-managed-key", TABLE,
             edit=set_path("serverSideEncryption", DELETE)),
    Mutation("table on the AWS-managed key", "dynamodb-table-customer-managed-key", TABLE,
             edit=set_path("serverSideEncryption.kmsKeyArn", DELETE)),
    Mutation("bucket encrypted with SSE-S3", "s3-bucket-sse-s3-only-for-access-logs", companion(ENCRYPTION, ARCHIVE),
             edit=set_path("rules.0.applyServerSideEncryptionByDefault", {"sseAlgorithm": "AES256"})),
    Mutation("bucket on the AWS-managed key", "s3-bucket-customer-managed-key", companion(ENCRYPTION, AUDIT_BUCKET),
             edit=set_path("rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", "alias/aws/s3")),
    Mutation("bucket key off", "s3-bucket-key-enabled", companion(ENCRYPTION, ARCHIVE),
             edit=set_path("rules.0.bucketKeyEnabled", False)),
    Mutation("log group unencrypted", "cloudwatch-log-group-customer-managed-key", PROCESSOR_LOG_GROUP,
             edit=set_path("kmsKeyId", DELETE)),
    Mutation("alarm topic unencrypted", "sns-topic-customer-managed-key", ALARM_TOPIC,
             edit=set_path("kmsMasterKeyId", DELETE)),
    Mutation("trail unencrypted", "cloudtrail-trail-customer-managed-key", THE_TRAIL, edit=set_path("kmsKeyId", DELETE)),
    Mutation("function environment on the default key", "lambda-function-environment-customer-managed-key",
             PROCESSOR, edit=set_path("kmsKeyArn", DELETE)),
    Mutation("key rotation off", "kms-key-rotation-enabled", KEY, edit=set_path("enableKeyRotation", False)),
    # Retention and recovery
    Mutation("shorten a log retention", "cloudwatch-log-group-retention", PROCESSOR_LOG_GROUP,
             edit=set_path("retentionInDays", 1)),
    Mutation("log retention forever", "cloudwatch-log-group-retention", RULE_ERROR_LOG_GROUP,
             edit=set_path("retentionInDays", DELETE)),
    Mutation("log retention CloudWatch refuses", "cloudwatch-log-group-retention", PROCESSOR_LOG_GROUP,
             edit=set_path("retentionInDays", 45)),
    Mutation("turn off point-in-time recovery", "dynamodb-table-point-in-time-recovery", TABLE,
             edit=set_path("pointInTimeRecovery.enabled", False)),
    Mutation("suspend versioning", "s3-bucket-versioning-enabled", companion(VERSIONING, ARCHIVE),
             edit=set_path("versioningConfiguration.status", "Suspended")),
    Mutation("archive to Glacier after 400 days", "s3-bucket-lifecycle-archive-transition",
             companion(LIFECYCLE, ARCHIVE), edit=set_path("rules.0.transitions.0.days", 400)),
    Mutation("disable the lifecycle rule", "s3-bucket-lifecycle-archive-transition",
             companion(LIFECYCLE, AUDIT_BUCKET), edit=set_path("rules.0.status", "Disabled")),
    # Tagging
    Mutation("remove a tag", "aws-resource-required-tags", TABLE, edit=drop_key("tags", "Owner")),
    Mutation("empty a tag", "aws-resource-required-tags", STREAM, edit=set_path("tags.CostCenter", " ")),
    Mutation("untag an alarm", "aws-resource-required-tags", PROCESSOR_ERRORS_ALARM, edit=set_path("tags", DELETE)),
    # Access
    Mutation("add a wildcard action to an IAM policy", "iam-policy-no-wildcard-action", PROCESSOR_POLICY,
             edit=add_statement("policy", allow(["s3:*"], ["arn:aws:s3:::elsewhere/*"]))),
    Mutation("widen an IAM action to a prefix", "iam-policy-no-wildcard-action", RULE_ROLE_POLICY,
             edit=update_statement("policy", 0, Action=["kinesis:Put*"])),
    Mutation("grant an IAM action on every resource", "iam-policy-no-wildcard-resource", PROCESSOR_POLICY,
             edit=update_statement("policy", 0, Resource="*")),
    Mutation("attach AdministratorAccess to a role", "iam-policy-attachment-no-admin-managed-policy", PROCESSOR_ROLE,
             add=Addition("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin",
                          {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, references={"role": "name"})),
    Mutation("trust any principal", "aws-policy-no-public-principal", PROCESSOR_ROLE,
             edit=update_statement("assumeRolePolicy", 0, Principal={"AWS": "*"})),
    Mutation("add a wildcard action to the IoT policy", "iot-policy-no-wildcard-action", DEVICE_POLICY,
             edit=update_statement("policy", "iot:Publish", Action=["iot:*"])),
    Mutation("let the IoT policy publish to any telemetry topic", "iot-policy-thing-scoped", DEVICE_POLICY,
             edit=widen_policy_variables("policy", "iot:Publish")),
    Mutation("let any client id connect", "iot-policy-thing-scoped", DEVICE_POLICY,
             edit=update_statement("policy", "iot:Connect", Resource="*")),
    Mutation("wildcard action in a key policy service statement", "kms-key-policy-no-wildcard-action", KEY,
             edit=update_statement("policy", 1, Action=["kms:*"])),
    Mutation("let CloudWatch Logs use the key for every log group", "kms-key-policy-service-scoped", KEY,
             edit=widen_service_grant("logs.")),
    Mutation("let CloudWatch use the key for every alarm", "kms-key-policy-service-scoped", KEY,
             edit=widen_service_grant("cloudwatch.")),
    Mutation("bypass the key policy lock-out check", "kms-key-lockout-safety-check", KEY,
             edit=set_path("bypassPolicyLockoutSafetyCheck", True)),
    Mutation("wildcard action in the alarm topic policy", "aws-resource-policy-no-wildcard-action",
             ALARM_TOPIC_POLICY, edit=update_statement("policy", 0, Action=["SNS:*"])),
    Mutation("open a bucket's public access block", "s3-bucket-public-access-block",
             companion(PUBLIC_ACCESS_BLOCK, ARCHIVE), edit=set_path("blockPublicPolicy", False)),
    Mutation("stop ignoring public ACLs", "s3-bucket-public-access-block",
             companion(PUBLIC_ACCESS_BLOCK, AUDIT_BUCKET), edit=set_path("ignorePublicAcls", False)),
    Mutation("remove the TLS-only deny", "s3-bucket-policy-deny-insecure-transport", companion(BUCKET_POLICY, ARCHIVE),
             edit=edit_statements("policy", lambda statements: statements.pop(0))),
    Mutation("grant the world read access", "aws-policy-no-public-principal", companion(BUCKET_POLICY, ARCHIVE),
             edit=add_statement("policy", allow(["s3:GetObject"], ["arn:aws:s3:::x/*"], Principal="*"))),
    Mutation("let a role write into the access log bucket", "s3-bucket-sse-s3-only-for-access-logs",
             companion(BUCKET_POLICY, ACCESS_LOG_BUCKET), edit=add_statement("policy", allow(
                 ["s3:PutObject"], ["arn:aws:s3:::x/*"], Principal={"AWS": A_ROLE_OF_THE_ACCOUNT}))),
    Mutation("stop logging the archive's requests", "s3-bucket-server-access-logging",
             companion(BUCKET_LOGGING, ARCHIVE), remove=True),
    Mutation("re-enable bucket ACLs", "s3-bucket-ownership-enforced", companion(OWNERSHIP, ARCHIVE),
             edit=set_path("rule.objectOwnership", "ObjectWriter")),
    Mutation("public-read ACL on a bucket", "s3-bucket-no-public-acl", ARCHIVE,
             add=Addition("aws:s3/bucketAcl:BucketAcl", "public-read", {"acl": "public-read"},
                          references={"bucket": "bucket"})),
    Mutation("add a public function URL", "lambda-function-url-no-public-access", PROCESSOR,
             add=Addition("aws:lambda/functionUrl:FunctionUrl", "public-url", {"authorizationType": "NONE"},
                          references={"functionName": "name"})),
    Mutation("let anyone invoke the function", "lambda-permission-no-public-principal", PROCESSOR,
             add=Addition("aws:lambda/permission:Permission", "anyone", invoke_permission("*"),
                          references={"function": "name"})),
    Mutation("let S3 of any account invoke the function", "lambda-permission-source-scoped", PROCESSOR,
             add=Addition("aws:lambda/permission:Permission", "any-bucket", invoke_permission("s3.amazonaws.com"),
                          references={"function": "name"})),
    # Reliability and audit
    Mutation("remove the rule's error action", "iot-topic-rule-error-action", THE_RULE,
             edit=set_path("errorAction", DELETE)),
    Mutation("rule on SQL 2015-10-08", "iot-topic-rule-sql-version", THE_RULE, edit=set_path("sqlVersion", "2015-10-08")),
    Mutation("disable the topic rule", "iot-topic-rule-enabled", THE_RULE, edit=set_path("enabled", False)),
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
    Mutation("function on python3.9", "lambda-function-supported-runtime", PROCESSOR,
             edit=set_path("runtime", "python3.9")),
    Mutation("alarm without actions", "cloudwatch-metric-alarm-actions", ITERATOR_AGE_ALARM,
             edit=set_path("alarmActions", DELETE)),
    Mutation("alarm actions disabled", "cloudwatch-metric-alarm-actions", PROCESSOR_ERRORS_ALARM,
             edit=set_path("actionsEnabled", False)),
    Mutation("IoT logging switched off", "iot-logging-options-enabled", PROCESSOR,
             add=Addition("aws:iot/loggingOptions:LoggingOptions", "iot-logging",
                          {"defaultLogLevel": "DISABLED", "roleArn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/iot-logging"})),
    Mutation("single-region trail", "cloudtrail-trail-multi-region", THE_TRAIL,
             edit=set_path("isMultiRegionTrail", False)),
    Mutation("trail without global service events", "cloudtrail-trail-multi-region", THE_TRAIL,
             edit=set_path("includeGlobalServiceEvents", False)),
    Mutation("trail without log file validation", "cloudtrail-trail-log-file-validation", THE_TRAIL,
             edit=set_path("enableLogFileValidation", DELETE)),
    Mutation("trail stopped", "cloudtrail-trail-logging-enabled", THE_TRAIL, edit=set_path("enableLogging", False)),
    Mutation("trail without CloudWatch Logs delivery", "cloudtrail-trail-cloudwatch-logs", THE_TRAIL,
             edit=set_path("cloudWatchLogsGroupArn", DELETE)),
    Mutation("reserve no concurrency for the function", "lambda-function-reserved-concurrency", PROCESSOR,
             edit=set_path("reservedConcurrentExecutions", 0), level="advisory"),
    Mutation("stop watching root account use", "cloudtrail-cis-metric-alarms", ROOT_ACCOUNT_USE_FILTER, remove=True),
    Mutation("delete the IAM policy change alarm", "cloudtrail-cis-metric-alarms", IAM_POLICY_CHANGES_ALARM,
             remove=True),
    Mutation("trail without Insights", "cloudtrail-trail-insights", THE_TRAIL, edit=set_path("insightSelectors", DELETE)),
    # Stack-level
    Mutation("delete a bucket's public access block", "s3-bucket-companion-resources",
             companion(PUBLIC_ACCESS_BLOCK, AUDIT_BUCKET), remove=True),
    Mutation("delete a bucket's encryption", "s3-bucket-companion-resources", companion(ENCRYPTION, ARCHIVE), remove=True),
    Mutation("delete the function's log group", "lambda-function-log-group", PROCESSOR_LOG_GROUP, remove=True),
    Mutation("encrypt the stream with another account's key", "kms-key-from-this-stack", STREAM,
             edit=set_path("kmsKeyId", ANOTHER_ACCOUNTS_KEY)),
]
