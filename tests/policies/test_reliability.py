"""Reliability and audit policies: the exact fixtures each fails."""

import pytest

from tests.policies.conftest import UNKNOWN, PolicyCases, check_policy_cases, fails, passes

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
TRAIL = "aws:cloudtrail/trail:Trail"
RULE = "aws:iot/topicRule:TopicRule"
STREAM_ARN = "arn:aws:kinesis:ap-southeast-1:123456789012:stream/s"
GOOD_MAPPING = {
    "eventSourceArn": STREAM_ARN, "startingPosition": "TRIM_HORIZON",
    "functionResponseTypes": ["ReportBatchItemFailures"], "maximumRetryAttempts": 5,
    "maximumRecordAgeInSeconds": 3600, "bisectBatchOnFunctionError": True,
    "destinationConfig": {"onFailure": {"destinationArn": "arn:aws:s3:::failed"}},
}
# A first preview: the stream's ARN is unknown, the starting position says it is a stream.
PREVIEW_MAPPING = {**GOOD_MAPPING, "eventSourceArn": UNKNOWN,
                   "destinationConfig": {"onFailure": {"destinationArn": UNKNOWN}}}
QUEUE_MAPPING = {"eventSourceArn": "arn:aws:sqs:ap-southeast-1:123456789012:q"}
GOOD_TRAIL = {"isMultiRegionTrail": True, "includeGlobalServiceEvents": True, "enableLogFileValidation": True,
              "enableLogging": True,
              "insightSelectors": [{"insightType": "ApiCallRateInsight"}, {"insightType": "ApiErrorRateInsight"}],
              "cloudWatchLogsGroupArn": "arn:aws:logs:ap-southeast-1:123456789012:log-group:/aws/cloudtrail/t:*",
              "cloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/trail-logs"}
FUNCTION = "aws:lambda/function:Function"


def without(properties: dict, key: str) -> dict:
    return {k: v for k, v in properties.items() if k != key}


def mapping_cases(policy: str, setting: str, *bad_values) -> PolicyCases:
    """A mapping policy about one setting: good, first-preview and SQS mappings pass; each bad value fails."""
    return PolicyCases(policy, MAPPING, [
        passes("good", GOOD_MAPPING), passes("first-preview", PREVIEW_MAPPING), passes("sqs-source", QUEUE_MAPPING),
        fails(f"{setting}-unset", without(GOOD_MAPPING, setting)),
        *(fails(f"{setting}-{value}", {**GOOD_MAPPING, setting: value}) for value in bad_values),
    ])


CASES = [
    PolicyCases("iot-topic-rule-sql-version", RULE, [
        passes("2016", {"sqlVersion": "2016-03-23"}), passes("unknown", {"sqlVersion": UNKNOWN}),
        fails("2015", {"sqlVersion": "2015-10-08"}), fails("beta", {"sqlVersion": "beta"}),
    ]),
    PolicyCases("iot-topic-rule-error-action", RULE, [
        passes("logs", {"errorAction": {"cloudwatchLogs": {"logGroupName": "g", "roleArn": UNKNOWN}}}),
        fails("none", {"sqlVersion": "2016-03-23"}),
    ]),
    PolicyCases("iot-topic-rule-enabled", RULE, [
        passes("enabled", {"enabled": True}), passes("default", {}), fails("disabled", {"enabled": False}),
    ]),
    mapping_cases("lambda-event-source-mapping-partial-batch-response", "functionResponseTypes", []),
    mapping_cases("lambda-event-source-mapping-bounded-retries", "maximumRetryAttempts", -1, 101),
    mapping_cases("lambda-event-source-mapping-bounded-record-age", "maximumRecordAgeInSeconds", -1, 604801),
    mapping_cases("lambda-event-source-mapping-bisect", "bisectBatchOnFunctionError", False),
    mapping_cases("lambda-event-source-mapping-failure-destination", "destinationConfig", {"onFailure": {}}),
    PolicyCases("lambda-event-source-mapping-enabled", MAPPING, [
        passes("good", GOOD_MAPPING), fails("disabled", {**GOOD_MAPPING, "enabled": False}),
    ]),
    PolicyCases("lambda-function-supported-runtime", "aws:lambda/function:Function", [
        passes("python3.13", {"runtime": "python3.13"}), passes("container-image", {"packageType": "Image"}),
        passes("unknown", {"runtime": UNKNOWN}),
        fails("python3.9", {"runtime": "python3.9"}), fails("nodejs16", {"runtime": "nodejs16.x"}),
    ]),
    PolicyCases("cloudwatch-metric-alarm-actions", "aws:cloudwatch/metricAlarm:MetricAlarm", [
        passes("notifies", {"alarmActions": ["arn:aws:sns:r:1:t"]}),
        passes("unknown-topic", {"alarmActions": [UNKNOWN]}),
        fails("no-actions", {"threshold": 1}), fails("empty-actions", {"alarmActions": []}),
        fails("actions-disabled", {"alarmActions": ["arn:aws:sns:r:1:t"], "actionsEnabled": False}),
    ]),
    PolicyCases("iot-logging-options-enabled", "aws:iot/loggingOptions:LoggingOptions", [
        passes("warn", {"defaultLogLevel": "WARN", "roleArn": UNKNOWN}),
        fails("disabled-level", {"defaultLogLevel": "DISABLED"}),
        fails("all-disabled", {"defaultLogLevel": "ERROR", "disableAllLogs": True}),
    ]),
    PolicyCases("cloudtrail-trail-multi-region", TRAIL, [
        passes("good", GOOD_TRAIL), passes("global-events-default", without(GOOD_TRAIL, "includeGlobalServiceEvents")),
        passes("unknown", {**GOOD_TRAIL, "isMultiRegionTrail": UNKNOWN}),
        fails("single-region", {**GOOD_TRAIL, "isMultiRegionTrail": False}),
        fails("region-unset", without(GOOD_TRAIL, "isMultiRegionTrail")),
        fails("no-global-events", {**GOOD_TRAIL, "includeGlobalServiceEvents": False}),
    ]),
    PolicyCases("cloudtrail-trail-log-file-validation", TRAIL, [
        passes("good", GOOD_TRAIL),
        fails("off", {**GOOD_TRAIL, "enableLogFileValidation": False}),
        fails("unset", without(GOOD_TRAIL, "enableLogFileValidation")),
    ]),
    PolicyCases("cloudtrail-trail-logging-enabled", TRAIL, [
        passes("good", GOOD_TRAIL), passes("default", without(GOOD_TRAIL, "enableLogging")),
        fails("stopped", {**GOOD_TRAIL, "enableLogging": False}),
    ]),
    PolicyCases("cloudtrail-trail-insights", TRAIL, [
        passes("good", GOOD_TRAIL), passes("unknown", {**GOOD_TRAIL, "insightSelectors": UNKNOWN}),
        fails("one", {**GOOD_TRAIL, "insightSelectors": [{"insightType": "ApiCallRateInsight"}]}),
        fails("none", without(GOOD_TRAIL, "insightSelectors")),
    ]),
    PolicyCases("cloudtrail-trail-cloudwatch-logs", TRAIL, [
        passes("good", GOOD_TRAIL),
        passes("first-preview", {**GOOD_TRAIL, "cloudWatchLogsGroupArn": UNKNOWN, "cloudWatchLogsRoleArn": UNKNOWN}),
        fails("no-group", without(GOOD_TRAIL, "cloudWatchLogsGroupArn")),
        fails("no-role", without(GOOD_TRAIL, "cloudWatchLogsRoleArn")),
        fails("empty-group", {**GOOD_TRAIL, "cloudWatchLogsGroupArn": ""}),
        fails("neither", without(without(GOOD_TRAIL, "cloudWatchLogsGroupArn"), "cloudWatchLogsRoleArn")),
    ]),
    # Advisory by default (README); the fixture pack makes everything mandatory.
    PolicyCases("lambda-function-reserved-concurrency", FUNCTION, [
        passes("reserved", {"reservedConcurrentExecutions": 20}),
        passes("unknown", {"reservedConcurrentExecutions": UNKNOWN}),
        fails("unset", {"runtime": "python3.13"}),
        fails("unreserved", {"reservedConcurrentExecutions": -1}),
        fails("zero", {"reservedConcurrentExecutions": 0}),
    ]),
]


@pytest.mark.parametrize("policy_cases", CASES, ids=lambda c: c.id)
def test_policy_fails_exactly_the_failing_fixtures(analyzer, policy_cases):
    check_policy_cases(analyzer, policy_cases)
