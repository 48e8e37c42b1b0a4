"""Alarms, their topic and the dashboard."""

import fnmatch
import io
import json

import pytest

from components.config_table import SETTINGS
from handler import layout, metrics
from handler.layout import METRICS_NAMESPACE
from handler.detection import KINDS
from handler.processor import BatchReport
from tests.program.assertions import assert_input, policy_statements

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ACCOUNT = "123456789012"
TOPIC_ARN = f"arn:aws:sns:ap-southeast-1:{ACCOUNT}:iot-pipeline-alarms-dev"
RULE = "iot_sensor_ingest_dev"
FUNCTION = "iot-processor-dev"

# Alarm role -> (namespace, metric, dimensions, statistic, dev threshold, comparison).
# "<mapping>" stands for the mapping's UUID, known only once the mapping exists.
SINGLE_METRIC_ALARMS = {
    "iterator-age": ("AWS/Lambda", "IteratorAge", {"FunctionName": FUNCTION}, "Maximum", 1_800_000,
                     "GreaterThanThreshold"),
    "processor-errors": ("AWS/Lambda", "Errors", {"FunctionName": FUNCTION}, "Sum", 1,
                         "GreaterThanOrEqualToThreshold"),
    "processor-throttles": ("AWS/Lambda", "Throttles", {"FunctionName": FUNCTION}, "Sum", 1,
                            "GreaterThanOrEqualToThreshold"),
    "mapping-not-polling": ("AWS/Lambda", "PolledEventCount", {"EventSourceMappingUUID": "<mapping>"},
                            "SampleCount", 1, "LessThanThreshold"),
    "records-to-failure-destination": ("AWS/Lambda", "OnFailureDestinationDeliveredEventCount",
                                       {"EventSourceMappingUUID": "<mapping>"}, "Sum", 1,
                                       "GreaterThanOrEqualToThreshold"),
    "records-dropped": ("AWS/Lambda", "DroppedEventCount", {"EventSourceMappingUUID": "<mapping>"}, "Sum", 1,
                        "GreaterThanOrEqualToThreshold"),
    "failure-destination-delivery": ("AWS/Lambda", "DestinationDeliveryFailures", {"FunctionName": FUNCTION},
                                     "Sum", 1, "GreaterThanOrEqualToThreshold"),
    "records-quarantined": (METRICS_NAMESPACE, layout.METRIC_QUARANTINED,
                            {layout.METRIC_DIMENSION_FUNCTION: FUNCTION}, "Sum", 100, "GreaterThanThreshold"),
    "anomalies": (METRICS_NAMESPACE, layout.METRIC_ANOMALIES, {layout.METRIC_DIMENSION_FUNCTION: FUNCTION}, "Sum",
                  500, "GreaterThanThreshold"),
}
QUERY_ALARMS = {"rule-action-failures", "rule-error-action-failures", "metrics-table-throttles"}
ALL_ALARMS = set(SINGLE_METRIC_ALARMS) | QUERY_ALARMS
# Config key -> the alarm whose threshold it sets.
THRESHOLD_KEY_ALARMS = {
    "alarmIteratorAgeMs": "iterator-age",
    "alarmLambdaErrors": "processor-errors",
    "alarmLambdaThrottles": "processor-throttles",
    "alarmFailedBatches": "records-to-failure-destination",
    "alarmRuleFailures": "rule-action-failures",
    "alarmDynamodbThrottles": "metrics-table-throttles",
    "alarmQuarantinedPer5Min": "records-quarantined",
    "alarmAnomaliesPer5Min": "anomalies",
}


def _alarm(run, role: str):
    return run.one(ALARM, f"iot-{run.stack}-monitoring-{role}-alarm")


@pytest.fixture(scope="module")
def dev_with_emails(program_run):
    return program_run("dev", config_overrides={"alarmEmails": ["ops@example.com", "oncall@example.com"]})


def _pipeline_alarms(run):
    # The audit trail's CIS alarms are tests/program/test_audit.py's.
    return [alarm for alarm in run.of_type(ALARM) if alarm.name.startswith(f"iot-{run.stack}-monitoring-")]


def test_the_stack_declares_exactly_the_documented_alarms(dev):
    names = {alarm.name for alarm in _pipeline_alarms(dev)}
    assert names == {f"iot-dev-monitoring-{role}-alarm" for role in ALL_ALARMS}


@pytest.mark.parametrize("role", sorted(SINGLE_METRIC_ALARMS))
def test_alarm_watches_the_metric_aws_publishes_for_this_stacks_resource(dev, role):
    namespace, metric_name, dimensions, statistic, threshold, comparison = SINGLE_METRIC_ALARMS[role]
    mapping_uuid = dev.one(MAPPING).outputs["uuid"]
    alarm = _alarm(dev, role)
    assert_input(alarm, "name", f"iot-pipeline-{role}_dev")
    assert_input(alarm, "namespace", namespace)
    assert_input(alarm, "metricName", metric_name)
    assert_input(alarm, "dimensions", {k: mapping_uuid if v == "<mapping>" else v for k, v in dimensions.items()})
    assert_input(alarm, "statistic", statistic)
    assert_input(alarm, "threshold", threshold)
    assert_input(alarm, "comparisonOperator", comparison)
    assert_input(alarm, "period", 300)


@pytest.mark.parametrize("role, metric_name", [
    ("rule-action-failures", "Failure"), ("rule-error-action-failures", "ErrorActionFailure"),
])
def test_rule_alarms_sum_the_rules_action_metric_over_every_action_type(dev, role, metric_name):
    alarm = _alarm(dev, role)
    [query] = alarm.inputs["metricQueries"]
    assert query["expression"] == (
        f'SELECT SUM({metric_name}) FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE RuleName = \'{RULE}\''
    ), alarm.urn
    assert query["period"] == 300 and query["returnData"] is True, alarm.urn
    assert_input(alarm, "threshold", 1)
    assert_input(alarm, "comparisonOperator", "GreaterThanOrEqualToThreshold")
    assert "metricName" not in alarm.inputs, f"{alarm.urn}: a query alarm sets no metricName"


def test_table_alarm_sums_read_and_write_throttle_events_of_the_metrics_table(dev):
    alarm = _alarm(dev, "metrics-table-throttles")
    queries = {query["id"]: query for query in alarm.inputs["metricQueries"]}
    for query_id, metric_name in (("reads", "ReadThrottleEvents"), ("writes", "WriteThrottleEvents")):
        metric = queries[query_id]["metric"]
        assert metric == {"namespace": "AWS/DynamoDB", "metricName": metric_name,
                          "dimensions": {"TableName": "sensor-metrics-dev"}, "stat": "Sum", "period": 300}, alarm.urn
        assert queries[query_id]["returnData"] is False, alarm.urn
    assert queries["throttle_events"]["expression"] == "FILL(reads, 0) + FILL(writes, 0)"
    assert queries["throttle_events"]["returnData"] is True
    assert_input(alarm, "threshold", 1)
    assert_input(alarm, "comparisonOperator", "GreaterThanOrEqualToThreshold")


@pytest.mark.parametrize("role", sorted(ALL_ALARMS))
def test_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(dev, role):
    alarm = _alarm(dev, role)
    assert_input(alarm, "alarmActions", [TOPIC_ARN])
    assert_input(alarm, "okActions", [TOPIC_ARN])
    # A quiet pipeline has no data: insufficient data must not page anyone.
    assert not alarm.inputs.get("insufficientDataActions"), alarm.urn


@pytest.mark.parametrize("role", sorted(ALL_ALARMS))
def test_missing_data_is_only_a_fault_for_the_mapping_that_must_always_poll(dev, role):
    alarm = _alarm(dev, role)
    if role == "mapping-not-polling":
        assert_input(alarm, "treatMissingData", "breaching")
        assert_input(alarm, "evaluationPeriods", 3)
    else:
        assert_input(alarm, "treatMissingData", "notBreaching")
        assert_input(alarm, "evaluationPeriods", 1)


def test_thresholds_come_from_the_stacks_config(program_run):
    assert {setting.key: setting.alarm for setting in SETTINGS if setting.alarm} == THRESHOLD_KEY_ALARMS, (
        "every threshold key of the config table sets its one alarm")
    values = {key: 1000 + index for index, key in enumerate(sorted(THRESHOLD_KEY_ALARMS))}
    run = program_run("dev", config_overrides=values)
    for key, role in THRESHOLD_KEY_ALARMS.items():
        assert_input(_alarm(run, role), "threshold", values[key])


def test_losing_records_alarms_on_the_first_one_whatever_the_config(program_run):
    run = program_run("dev", config_overrides={"alarmFailedBatches": 50, "alarmRuleFailures": 50})
    for role in ("records-dropped", "failure-destination-delivery", "rule-error-action-failures"):
        assert_input(_alarm(run, role), "threshold", 1)


def test_prod_alarms_on_a_shorter_iterator_age_than_dev(dev, prod):
    assert_input(_alarm(dev, "iterator-age"), "threshold", 1_800_000)
    assert_input(_alarm(prod, "iterator-age"), "threshold", 900_000)
    assert_input(_alarm(prod, "iterator-age"), "dimensions", {"FunctionName": "iot-processor-prod"})
    assert_input(_alarm(prod, "iterator-age"), "alarmActions",
                 [f"arn:aws:sns:ap-southeast-1:{ACCOUNT}:iot-pipeline-alarms-prod"])


def test_processor_alarms_match_the_metrics_the_processor_emits(dev):
    """The custom alarms read exactly the namespace, name and dimension set of the processor's EMF lines."""
    report = BatchReport(records=3)
    report.quarantined, report.anomalies = 1, {"spike": 2}
    out = io.StringIO()
    metrics.emit(report, METRICS_NAMESPACE, FUNCTION, 12.5, stream=out)
    published = set()
    for line in out.getvalue().splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                values = tuple(sorted((name, document[name]) for name in dimension_set))
                for metric in directive["Metrics"]:
                    published.add((directive["Namespace"], metric["Name"], values))
    for role in ("records-quarantined", "anomalies"):
        alarm = _alarm(dev, role).inputs
        key = (alarm["namespace"], alarm["metricName"], tuple(sorted(alarm["dimensions"].items())))
        assert key in published, f"{role} alarm reads {key}, the processor publishes {sorted(published)}"
    function = dev.one("aws:lambda/function:Function")
    assert function.inputs["environment"]["variables"][layout.ENV_METRICS_NAMESPACE] == METRICS_NAMESPACE


def test_mapping_publishes_the_event_counts_the_failure_alarms_read(dev):
    assert_input(dev.one(MAPPING), "metricsConfig", {"metrics": ["EventCount"]})


def test_topic_is_encrypted_with_the_stacks_key(dev):
    topic = dev.one(TOPIC)
    assert_input(topic, "name", "iot-pipeline-alarms-dev")
    assert_input(topic, "kmsMasterKeyId", dev.one("aws:kms/key:Key").outputs["arn"])


def test_only_this_stacks_alarms_may_publish_to_the_topic(dev):
    statements = policy_statements(dev.one("aws:sns/topicPolicy:TopicPolicy"))
    assert list(statements) == ["CloudWatchAlarmsPublish"]
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["Effect"] == "Allow"
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == ["sns:Publish"]
    assert publish["Resource"] == [TOPIC_ARN]
    assert publish["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:ap-southeast-1:{ACCOUNT}:alarm:iot-pipeline-*_dev"},
    }


def test_every_alarm_is_allowed_by_the_topic_policy_and_the_key_policy(dev):
    topic_pattern = policy_statements(dev.one("aws:sns/topicPolicy:TopicPolicy"))["CloudWatchAlarmsPublish"][
        "Condition"]["ArnLike"]["aws:SourceArn"]
    key_statement = policy_statements(dev.one("aws:kms/key:Key"))["CloudWatchAlarmsPublishEncrypted"]
    key_pattern = key_statement["Condition"]["ArnLike"]["aws:SourceArn"]
    for alarm in dev.of_type(ALARM):
        arn = f"arn:aws:cloudwatch:ap-southeast-1:{ACCOUNT}:alarm:{alarm.inputs['name']}"
        assert fnmatch.fnmatchcase(arn, topic_pattern), f"{alarm.urn}: {arn} not allowed by {topic_pattern}"
        assert fnmatch.fnmatchcase(arn, key_pattern), f"{alarm.urn}: {arn} not allowed by {key_pattern}"
    assert set(key_statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_no_email_subscription_unless_configured(dev):
    assert dev.of_type(SUBSCRIPTION) == []


def test_each_configured_address_is_subscribed_by_email(dev_with_emails):
    subscriptions = dev_with_emails.of_type(SUBSCRIPTION)
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == ["oncall@example.com", "ops@example.com"]
    for subscription in subscriptions:
        assert_input(subscription, "protocol", "email")
        assert_input(subscription, "topic", TOPIC_ARN)


def _dashboard_body(run) -> dict:
    dashboard = run.one(DASHBOARD)
    return json.loads(dashboard.inputs["dashboardBody"])


def test_dashboard_is_named_after_the_stack_and_exported(dev):
    assert_input(dev.one(DASHBOARD), "dashboardName", "iot-pipeline-dev")
    assert dev.stack_outputs["dashboardName"] == "iot-pipeline-dev"
    assert dev.stack_outputs["alarmTopicArn"] == TOPIC_ARN


def test_dashboard_graphs_this_stacks_resources_in_its_region(dev):
    body = _dashboard_body(dev)
    text = json.dumps(body)
    mapping_uuid = dev.one(MAPPING).outputs["uuid"]
    for name in (FUNCTION, "iot-sensor-stream-dev", "sensor-metrics-dev", RULE, mapping_uuid):
        assert name in text, f"dashboard does not reference {name}"
    graphs = [w for w in body["widgets"] if w["type"] == "metric"]
    assert graphs and all(w["properties"]["region"] == "ap-southeast-1" for w in graphs)
    titles = {w["properties"]["title"] for w in graphs}
    for wanted in ("Ingest rate", "Iterator age", "Batch latency", "Errors", "Anomalies by kind", "Quarantined"):
        assert any(title.startswith(wanted) for title in titles), f"no {wanted!r} graph among {titles}"


def test_dashboard_graphs_ingest_and_each_anomaly_kind(dev):
    graphs = {w["properties"]["title"]: w["properties"]["metrics"] for w in _dashboard_body(dev)["widgets"]
              if w["type"] == "metric"}
    ingest = [line[:4] for line in graphs["Ingest rate (per 5 minutes)"] if isinstance(line[0], str)]
    assert ["AWS/Kinesis", "IncomingRecords", "StreamName", "iot-sensor-stream-dev"] in ingest
    assert ["AWS/IoT", "TopicMatch", "RuleName", RULE] in ingest
    kinds = {line[5] for line in graphs["Anomalies by kind"]
             if line[:4] == [METRICS_NAMESPACE, layout.METRIC_ANOMALIES, layout.METRIC_DIMENSION_FUNCTION, FUNCTION]
             and line[4] == layout.METRIC_DIMENSION_ANOMALY_KIND}
    assert kinds == set(KINDS)


def test_dashboard_shows_the_state_of_every_alarm(dev):
    [alarm_widget] = [w for w in _dashboard_body(dev)["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(a.outputs["arn"] for a in _pipeline_alarms(dev))
