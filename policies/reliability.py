"""Reliability and audit: no reading silently dropped between IoT Core and the
processor, alarms that reach someone, and an audit trail that covers the account.

Mandatory by default: each rule is a way a reading or an audit record is lost
without anyone noticing. What teams reasonably tune is a setting (the retry
bound, the maximum record age, the allowed runtimes), not the rule's level.
"""

from __future__ import annotations

from functools import partial

from pulumi_policy import Severity

from policy_kit import (
    ADVISORY,
    MANDATORY,
    Properties,
    Report,
    Settings,
    Validator,
    as_list,
    describe,
    get_path,
    integer_setting,
    is_known,
    is_unknown,
    resource_policy,
    string_list_setting,
)

MAPPING = ["aws:lambda/eventSourceMapping:EventSourceMapping"]
TRAIL = ["aws:cloudtrail/trail:Trail"]
TOPIC_RULE = ["aws:iot/topicRule:TopicRule"]
INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")
# What AWS assumes when a trail leaves the setting out.
TRAIL_COVERAGE_DEFAULTS = {"isMultiRegionTrail": False, "includeGlobalServiceEvents": True}
SUPPORTED_RUNTIMES = ["python3.12", "python3.13", "python3.14", "nodejs20.x", "nodejs22.x", "java21", "dotnet8",
                      "provided.al2023", "ruby3.3", "ruby3.4"]

reliability_policy = partial(resource_policy, enforcement_level=MANDATORY, severity=Severity.HIGH)


def _is_stream_mapping(properties: Properties) -> bool:
    source = properties.get("eventSourceArn")
    # Stream sources need a starting position: an unknown source with one is a stream.
    return (isinstance(source, str) and (":kinesis:" in source or ":dynamodb:" in source)) or (
        is_unknown(source) and "startingPosition" in properties)


def stream_mapping_rule(check: Validator) -> Validator:
    """A rule that only applies to Kinesis and DynamoDB stream mappings."""
    def validate(properties: Properties, settings: Settings, report: Report) -> None:
        if _is_stream_mapping(properties):
            check(properties, settings, report)
    return validate


def require_true(path: str, consequence: str) -> Validator:
    """A rule that `path` is true (unknown passes: a computed flag is not a decision to turn it off)."""
    def validate(properties: Properties, _settings: Settings, report: Report) -> None:
        value = get_path(properties, path)
        if is_known(value) and value is not True:
            report(f"{path} is {describe(value)}: {consequence}")
    return validate


def _sql_version(properties: Properties, settings: Settings, report: Report) -> None:
    version = properties.get("sqlVersion")
    if is_known(version) and version != settings["sqlVersion"]:
        report(f"sqlVersion is {version!r}: use {settings['sqlVersion']!r} (older versions parse payloads "
               "differently)")


def _error_action(properties: Properties, _settings: Settings, report: Report) -> None:
    if not properties.get("errorAction"):
        report("errorAction is not set: messages the rule fails to deliver are dropped")


def _rule_enabled(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("enabled") is False:
        report("enabled is false: every message on the rule's topics is dropped")


def _partial_batch(properties: Properties, _settings: Settings, report: Report) -> None:
    types = properties.get("functionResponseTypes")
    if is_known(types) and "ReportBatchItemFailures" not in as_list(types):
        report("functionResponseTypes lacks \"ReportBatchItemFailures\": one bad record retries the whole batch")


def _bounded_retries(properties: Properties, settings: Settings, report: Report) -> None:
    retries = properties.get("maximumRetryAttempts")
    if is_known(retries) and (retries is None or not 0 <= retries <= settings["maximumRetryAttempts"]):
        report(f"maximumRetryAttempts is {retries!r}: bound it (0..{settings['maximumRetryAttempts']}), or a "
               "failing batch blocks its shard until the data expires")


def _bounded_record_age(properties: Properties, settings: Settings, report: Report) -> None:
    age = properties.get("maximumRecordAgeInSeconds")
    if is_known(age) and (age is None or not 60 <= age <= settings["maximumRecordAgeSeconds"]):
        report(f"maximumRecordAgeInSeconds is {age!r}: bound it (60..{settings['maximumRecordAgeSeconds']}) so "
               "stale records go to the on-failure destination")


def _failure_destination(properties: Properties, _settings: Settings, report: Report) -> None:
    if get_path(properties, "destinationConfig.onFailure.destinationArn") is None:
        report("destinationConfig.onFailure.destinationArn is not set: batches that give up are lost")


def _mapping_enabled(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("enabled") is False:
        report("enabled is false: the stream is not processed and records expire unread")


def _trail_multi_region(properties: Properties, _settings: Settings, report: Report) -> None:
    for setting, aws_default in TRAIL_COVERAGE_DEFAULTS.items():
        value = properties.get(setting, aws_default)
        if is_known(value) and value is not True:
            report(f"{setting} is {describe(value)}: activity in other regions or in global services goes unaudited")


def _trail_insights(properties: Properties, _settings: Settings, report: Report) -> None:
    selectors = properties.get("insightSelectors")
    if is_unknown(selectors):
        return
    found = {get_path(selector, "insightType") for selector in as_list(selectors)}
    missing = [insight for insight in INSIGHT_TYPES if insight not in found]
    if missing:
        report(f"insightSelectors lacks {', '.join(missing)}: unusual API activity goes unnoticed")


def _trail_logging(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("enableLogging") is False:
        report("enableLogging is false: the trail records nothing")


def _trail_cloudwatch_logs(properties: Properties, _settings: Settings, report: Report) -> None:
    # Present but unknown (the group's ARN in a first preview) is a delivery.
    for setting in ("cloudWatchLogsGroupArn", "cloudWatchLogsRoleArn"):
        if properties.get(setting) in (None, ""):
            report(f"{setting} is not set: the trail's events reach no log group, so no metric filter or alarm "
                   "sees them (CIS 3.4)")


def _reserved_concurrency(properties: Properties, _settings: Settings, report: Report) -> None:
    reserved = properties.get("reservedConcurrentExecutions")
    if is_unknown(reserved):
        return
    if reserved in (None, -1):
        report("reservedConcurrentExecutions is not set: other functions of the account can use up the "
               "concurrency this one needs")
    elif reserved == 0:
        report("reservedConcurrentExecutions is 0: every invocation is throttled")


def _supported_runtime(properties: Properties, settings: Settings, report: Report) -> None:
    runtime = properties.get("runtime")
    if isinstance(runtime, str) and not is_unknown(runtime) and runtime not in settings["allowedRuntimes"]:
        report(f"runtime {runtime!r} is deprecated or not allowed: use one of {', '.join(settings['allowedRuntimes'])}")


def _alarm_actions(properties: Properties, _settings: Settings, report: Report) -> None:
    actions = properties.get("alarmActions")
    if properties.get("actionsEnabled") is False:
        report("actionsEnabled is false: the alarm notifies no one")
    elif is_known(actions) and not as_list(actions):
        report("alarmActions is empty: the alarm notifies no one")


def _iot_logging(properties: Properties, _settings: Settings, report: Report) -> None:
    if properties.get("disableAllLogs") is True:
        report("disableAllLogs is true: IoT Core failures leave no trace")
    elif properties.get("defaultLogLevel") == "DISABLED":
        report("defaultLogLevel is \"DISABLED\": IoT Core failures leave no trace")


POLICIES = [
    reliability_policy(
        "iot-topic-rule-sql-version", "Topic rules use SQL version 2016-03-23.",
        resource_types=TOPIC_RULE, validate=_sql_version, severity=Severity.MEDIUM,
        remediation="Set sql_version=\"2016-03-23\".",
        config={"sqlVersion": {"type": "string", "default": "2016-03-23", "description": "The SQL version rules use"}}),
    reliability_policy(
        "iot-topic-rule-error-action", "Topic rules have an error action, so failed deliveries are kept.",
        resource_types=TOPIC_RULE, validate=_error_action,
        remediation="Add error_action (CloudWatch Logs, S3 or SQS) with a role allowed to write there."),
    reliability_policy(
        "iot-topic-rule-enabled", "Topic rules are enabled.", resource_types=TOPIC_RULE, validate=_rule_enabled,
        remediation="Remove enabled=False (or delete the rule)."),
    reliability_policy(
        "lambda-event-source-mapping-partial-batch-response",
        "Stream event source mappings report batch item failures.",
        resource_types=MAPPING, validate=stream_mapping_rule(_partial_batch),
        remediation="Set function_response_types=[\"ReportBatchItemFailures\"] and return batchItemFailures."),
    reliability_policy(
        "lambda-event-source-mapping-bounded-retries", "Stream event source mappings bound their retries.",
        resource_types=MAPPING, validate=stream_mapping_rule(_bounded_retries),
        remediation="Set maximum_retry_attempts (not -1, the default).",
        config={"maximumRetryAttempts": integer_setting(100, "Most retries allowed")}),
    reliability_policy(
        "lambda-event-source-mapping-bounded-record-age",
        "Stream event source mappings give up on records older than a bound.",
        resource_types=MAPPING, validate=stream_mapping_rule(_bounded_record_age),
        remediation="Set maximum_record_age_in_seconds (not -1, the default).",
        config={"maximumRecordAgeSeconds": integer_setting(604800, "Largest maximum record age, in seconds", 60)}),
    reliability_policy(
        "lambda-event-source-mapping-bisect", "Stream event source mappings split a failing batch.",
        resource_types=MAPPING, severity=Severity.MEDIUM, remediation="Set bisect_batch_on_function_error=True.",
        validate=stream_mapping_rule(require_true(
            "bisectBatchOnFunctionError", "a poison record fails every record batched with it"))),
    reliability_policy(
        "lambda-event-source-mapping-failure-destination",
        "Stream event source mappings send batches that give up to an on-failure destination.",
        resource_types=MAPPING, validate=stream_mapping_rule(_failure_destination),
        remediation="Set destination_config={\"on_failure\": {\"destination_arn\": <S3 bucket, SQS or SNS>}}; "
                    "an S3 bucket keeps the records themselves."),
    reliability_policy(
        "lambda-event-source-mapping-enabled", "Event source mappings are enabled.",
        resource_types=MAPPING, validate=_mapping_enabled, remediation="Remove enabled=False."),
    reliability_policy(
        "lambda-function-supported-runtime", "Lambda functions run on a supported, allowed runtime.",
        resource_types=["aws:lambda/function:Function"], validate=_supported_runtime, severity=Severity.MEDIUM,
        remediation="Set runtime to a current one (python3.13, for example).",
        config={"allowedRuntimes": string_list_setting(SUPPORTED_RUNTIMES, "Runtimes functions may use")}),
    reliability_policy(
        "cloudwatch-metric-alarm-actions", "Metric alarms notify someone when they fire.",
        resource_types=["aws:cloudwatch/metricAlarm:MetricAlarm"], validate=_alarm_actions,
        severity=Severity.MEDIUM, remediation="Set alarm_actions to the stack's alarm topic; keep actions enabled."),
    reliability_policy(
        "iot-logging-options-enabled", "IoT Core logging, where a stack owns it, is on.",
        resource_types=["aws:iot/loggingOptions:LoggingOptions"], validate=_iot_logging, severity=Severity.MEDIUM,
        remediation="Set default_log_level to ERROR, WARN, INFO or DEBUG and leave disable_all_logs unset."),
    reliability_policy(
        "cloudtrail-trail-multi-region", "CloudTrail trails cover every region and global services.",
        resource_types=TRAIL, validate=_trail_multi_region,
        remediation="Set is_multi_region_trail=True and include_global_service_events=True."),
    reliability_policy(
        "cloudtrail-trail-log-file-validation", "CloudTrail trails sign their log files, so tampering shows.",
        resource_types=TRAIL, remediation="Set enable_log_file_validation=True.",
        validate=require_true("enableLogFileValidation", "a changed or deleted log file goes undetected")),
    reliability_policy(
        "cloudtrail-trail-logging-enabled", "CloudTrail trails are logging.",
        resource_types=TRAIL, validate=_trail_logging, remediation="Remove enable_logging=False."),
    reliability_policy(
        "cloudtrail-trail-cloudwatch-logs",
        "CloudTrail trails also deliver to a CloudWatch Logs group, where metric filters and alarms watch them.",
        resource_types=TRAIL, validate=_trail_cloudwatch_logs, severity=Severity.MEDIUM,
        remediation="Set cloud_watch_logs_group_arn (the group's ARN + \":*\") and cloud_watch_logs_role_arn "
                    "(a role cloudtrail.amazonaws.com assumes, with logs:CreateLogStream and logs:PutLogEvents "
                    "on that group only)."),
    reliability_policy(
        "lambda-function-reserved-concurrency",
        "Lambda functions reserve their concurrency (advisory: see the README for when not to).",
        resource_types=["aws:lambda/function:Function"], validate=_reserved_concurrency,
        enforcement_level=ADVISORY, severity=Severity.LOW,
        remediation="Set reserved_concurrent_executions to at least the stream's shards times the mapping's "
                    "parallelization factor, within the account's unreserved concurrency quota."),
    reliability_policy(
        "cloudtrail-trail-insights", "CloudTrail trails run API call rate and error rate Insights.",
        resource_types=TRAIL, validate=_trail_insights, severity=Severity.LOW,
        remediation="Add insight_selectors for ApiCallRateInsight and ApiErrorRateInsight."),
]
