"""Reliability and audit: no reading silently dropped between IoT Core and the processor,
and an audit trail that covers the account."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from policy_kit import as_list, get_path, is_unknown, resource_policy

ADVISORY = EnforcementLevel.ADVISORY
MAPPING = ["aws:lambda/eventSourceMapping:EventSourceMapping"]


def _is_stream_mapping(properties: dict) -> bool:
    source = properties.get("eventSourceArn")
    # Stream sources need a starting position; an unknown ARN with one is a stream.
    return (isinstance(source, str) and (":kinesis:" in source or ":dynamodb:" in source)) or (
        is_unknown(source) and "startingPosition" in properties)


def _sql_version(properties, config, report):
    version = properties.get("sqlVersion")
    if not is_unknown(version) and version != config["sqlVersion"]:
        report(f"sqlVersion is {version!r}; use {config['sqlVersion']!r} (the 2015 version parses payloads differently)")


def _error_action(properties, _config, report):
    if not properties.get("errorAction"):
        report("the rule has no error action: messages it fails to deliver are dropped")


def _partial_batch(properties, _config, report):
    if _is_stream_mapping(properties):
        types = properties.get("functionResponseTypes")
        if not is_unknown(types) and "ReportBatchItemFailures" not in as_list(types):
            report("the mapping does not honour partial batch responses: one bad record retries the whole batch")


def _bounded_retries(properties, config, report):
    if not _is_stream_mapping(properties):
        return
    retries = properties.get("maximumRetryAttempts")
    age = properties.get("maximumRecordAgeInSeconds")
    if not is_unknown(retries) and (retries is None or retries < 0 or retries > config["maximumRetryAttempts"]):
        report(f"maximumRetryAttempts is {retries!r}; bound it (0..{config['maximumRetryAttempts']}) "
               "or a failing batch stalls the shard until the data expires")
    if not is_unknown(age) and (age is None or age < 0):
        report(f"maximumRecordAgeInSeconds is {age!r}; bound it so old records go to the failure destination")


def _bisect(properties, _config, report):
    if _is_stream_mapping(properties):
        bisect = properties.get("bisectBatchOnFunctionError")
        if not is_unknown(bisect) and bisect is not True:
            report("bisectBatchOnFunctionError is off: a poison record fails every record batched with it")


def _failure_destination(properties, _config, report):
    if _is_stream_mapping(properties) and get_path(properties, "destinationConfig.onFailure.destinationArn") is None:
        report("the mapping has no on-failure destination: batches that give up are lost")


def _trail_coverage(properties, _config, report):
    for setting in ("isMultiRegionTrail", "enableLogFileValidation"):
        value = properties.get(setting)
        if not is_unknown(value) and value is not True:
            report(f"{setting} is {value!r}; set it true")


def _trail_insights(properties, _config, report):
    selectors = properties.get("insightSelectors")
    if is_unknown(selectors):
        return
    found = {get_path(selector, "insightType") for selector in as_list(selectors)}
    missing = {"ApiCallRateInsight", "ApiErrorRateInsight"} - found
    if missing:
        report(f"CloudTrail Insights is missing {', '.join(sorted(missing))}")


def _reliability_policy(name, description, types, validate, remediation, severity=Severity.HIGH, config=None):
    return resource_policy(name, description, resource_types=types, validate=validate, severity=severity,
                           remediation=remediation, enforcement_level=ADVISORY, config=config)


POLICIES = [
    _reliability_policy("iot-topic-rule-sql-version", "Topic rules use SQL version 2016-03-23.",
                        ["aws:iot/topicRule:TopicRule"], _sql_version, "Set sql_version=\"2016-03-23\".",
                        severity=Severity.MEDIUM,
                        config={"sqlVersion": {"type": "string", "default": "2016-03-23",
                                               "description": "The SQL version rules must use"}}),
    _reliability_policy("iot-topic-rule-error-action", "Topic rules have an error action, so failed deliveries are kept.",
                        ["aws:iot/topicRule:TopicRule"], _error_action,
                        "Add error_action (CloudWatch Logs, S3 or SQS) with a role allowed to write there."),
    _reliability_policy("lambda-event-source-mapping-partial-batch-response",
                        "Stream event source mappings report batch item failures.", MAPPING, _partial_batch,
                        "Set function_response_types=[\"ReportBatchItemFailures\"] and return batchItemFailures."),
    _reliability_policy("lambda-event-source-mapping-bounded-retries",
                        "Stream event source mappings bound retries and record age.", MAPPING, _bounded_retries,
                        "Set maximum_retry_attempts and maximum_record_age_in_seconds (not -1).",
                        config={"maximumRetryAttempts": {"type": "integer", "default": 100, "minimum": 0,
                                                         "description": "Most retries allowed"}}),
    _reliability_policy("lambda-event-source-mapping-bisect",
                        "Stream event source mappings bisect a failing batch.", MAPPING, _bisect,
                        "Set bisect_batch_on_function_error=True.", severity=Severity.MEDIUM),
    _reliability_policy("lambda-event-source-mapping-failure-destination",
                        "Stream event source mappings send batches that give up to an on-failure destination.",
                        MAPPING, _failure_destination,
                        "Set destination_config={\"on_failure\": {\"destination_arn\": <S3 bucket, SQS or SNS>}}; "
                        "an S3 bucket keeps the records themselves."),
    _reliability_policy("cloudtrail-trail-multi-region-validated",
                        "CloudTrail trails cover every region and validate their log files.",
                        ["aws:cloudtrail/trail:Trail"], _trail_coverage,
                        "Set is_multi_region_trail=True and enable_log_file_validation=True."),
    _reliability_policy("cloudtrail-trail-insights", "CloudTrail trails run API call rate and error rate Insights.",
                        ["aws:cloudtrail/trail:Trail"], _trail_insights,
                        "Add insight_selectors for ApiCallRateInsight and ApiErrorRateInsight.",
                        severity=Severity.LOW),
]
