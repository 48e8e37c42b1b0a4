"""The query layer: Glue tables over the archive with partition projection, the Athena
workgroup, its named queries and the analysts' access, by input name, for dev and prod.

What mocks cannot check (deploy notes, item 32): that Athena accepts the cutoff
(>= 10 MB), that the querying principal really holds kms:GenerateDataKey and
kms:Decrypt through S3, that projection finds the objects (the template's
`${dt}`/`${hour}` against the processor's keys is checked here, and locally by
tests/local/test_query.py), and that objects moved to Glacier are unreadable.
"""

import json

import pulumi
import pytest

from components import archive_tables
from components.archive_tables import PARTITION_KEYS, QUARANTINE, READINGS
from harness.mocks import run_program
from tests.program.assertions import assert_input, policy_statements, value_at

DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
TABLE = "aws:glue/catalogTable:CatalogTable"
WORKGROUP = "aws:athena/workgroup:Workgroup"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"
ACCOUNT = "123456789012"
REGION = "ap-southeast-1"


def archive_bucket(run) -> str:
    return run.one("aws:s3/bucket:Bucket", f"iot-{run.config['iot-sensor-pipeline:environmentSuffix']}"
                   "-storage-archive-bucket").outputs["bucket"]


def key_arn(run) -> str:
    return run.one("aws:kms/key:Key").outputs["arn"]


@pytest.fixture(params=["dev", "prod"])
def stack(request, dev, prod):
    return {"dev": dev, "prod": prod}[request.param], request.param


def test_database_is_named_for_the_stack_and_tagged(stack):
    run, suffix = stack
    database = run.one(DATABASE)
    assert_input(database, "name", f"iot_sensor_archive_{suffix}")
    assert_input(database, "tags.Environment", suffix)


@pytest.mark.parametrize("table", [READINGS, QUARANTINE], ids=lambda t: t.name)
def test_table_reads_gzip_json_lines_under_its_prefix_with_partition_projection(stack, table):
    run, suffix = stack
    resource = run.one(TABLE, f"iot-{suffix}-analytics-{table.name}-table")
    location = f"s3://{archive_bucket(run)}/{table.prefix}"
    assert_input(resource, "name", table.name)
    assert_input(resource, "databaseName", f"iot_sensor_archive_{suffix}")
    assert_input(resource, "tableType", "EXTERNAL_TABLE")
    assert_input(resource, "parameters", {
        "EXTERNAL": "TRUE",
        "classification": "json",
        "compressionType": "gzip",
        "read_restored_glacier_objects": "true",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2020-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": f"{location}/dt=${{dt}}/hour=${{hour}}",
    })
    assert_input(resource, "partitionKeys", [{"name": "dt", "type": "string", "comment": PARTITION_KEYS[0].comment},
                                             {"name": "hour", "type": "string", "comment": PARTITION_KEYS[1].comment}])
    assert_input(resource, "storageDescriptor.location", f"{location}/")
    assert_input(resource, "storageDescriptor.inputFormat", "org.apache.hadoop.mapred.TextInputFormat")
    assert_input(resource, "storageDescriptor.outputFormat",
                 "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
    assert_input(resource, "storageDescriptor.serDeInfo", {"serializationLibrary": "org.openx.data.jsonserde.JsonSerDe"})
    columns = value_at(resource, "storageDescriptor.columns")
    assert [(c["name"], c["type"]) for c in columns] == [(c.name, c.type) for c in table.columns], resource.urn


def test_readings_columns_are_the_message_fields_and_where_kinesis_put_them():
    assert READINGS.column_names == [
        "schema_version", "device_id", "timestamp", "readings", "sequence", "firmware", "site", "line",
        "topic_device_id", "received_at", "kinesis_shard_id", "kinesis_sequence_number", "kinesis_arrival_ms"]
    assert QUARANTINE.column_names == ["reason", "detail", "shard_id", "sequence_number", "arrival_ms",
                                       "data_base64"]


def test_workgroup_enforces_encrypted_results_in_the_archive_bucket_and_a_scan_limit(stack):
    run, suffix = stack
    workgroup = run.one(WORKGROUP)
    assert_input(workgroup, "name", f"iot-analytics-{suffix}")
    assert_input(workgroup, "state", "ENABLED")
    assert_input(workgroup, "forceDestroy", suffix == "dev")
    assert_input(workgroup, "configuration", {
        "enforceWorkgroupConfiguration": True,
        "publishCloudwatchMetricsEnabled": True,
        "bytesScannedCutoffPerQuery": 1024 * 1024 * 1024,
        "engineVersion": {"selectedEngineVersion": "Athena engine version 3"},
        "resultConfiguration": {
            "outputLocation": f"s3://{archive_bucket(run)}/athena-results/",
            "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": key_arn(run)},
            "expectedBucketOwner": ACCOUNT,
        },
    })
    assert_input(workgroup, "tags.Environment", suffix)


def test_scan_limit_comes_from_config(program_run):
    run = program_run("dev", config_overrides={"athenaBytesScannedCutoffMb": 10})
    assert_input(run.one(WORKGROUP), "configuration.bytesScannedCutoffPerQuery", 10 * 1024 * 1024)


@pytest.mark.parametrize("value", [9, 0, "lots"])
def test_scan_limit_below_athenas_minimum_fails_naming_the_key(value):
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config_overrides={"athenaBytesScannedCutoffMb": value})
    message = str(raised.value)
    assert "config `athenaBytesScannedCutoffMb`" in message and "from 10" in message, message


@pytest.mark.parametrize("suffix, margin_minutes", [("dev", 65), ("prod", 1445)])
def test_device_readings_query_prunes_arrival_partitions_with_the_stacks_margins(dev, prod, suffix, margin_minutes):
    run = {"dev": dev, "prod": prod}[suffix]
    query = run.one(NAMED_QUERY, f"iot-{suffix}-analytics-device-readings-query")
    # maximumRecordAgeSeconds (3600 dev, 86400 prod) plus the 5 minutes of device clock skew.
    expected = archive_tables.device_readings_query({"dev": 3600, "prod": 86400}[suffix], 24)
    assert archive_tables.partition_margins({"dev": 3600, "prod": 86400}[suffix], 24) == (margin_minutes, 24)
    assert_input(query, "name", f"device-readings-{suffix}")
    assert_input(query, "workgroup", f"iot-analytics-{suffix}")
    assert_input(query, "database", f"iot_sensor_archive_{suffix}")
    assert_input(query, "query", expected.sql)
    assert_input(query, "description", expected.description)
    assert f"INTERVAL '{margin_minutes}' MINUTE" in expected.sql and "INTERVAL '24' HOUR" in expected.sql
    assert expected.sql.count("?") == len(expected.parameters) == 5


def test_late_arrival_margin_comes_from_config(program_run):
    run = program_run("dev", config_overrides={"athenaLateArrivalHours": 72})
    query = run.one(NAMED_QUERY, "iot-dev-analytics-device-readings-query")
    assert "INTERVAL '72' HOUR" in query.inputs["query"]


def test_quarantine_query_counts_by_reason_per_arrival_day(dev):
    query = dev.one(NAMED_QUERY, "iot-dev-analytics-quarantine-by-reason-query")
    assert_input(query, "name", "quarantine-by-reason-dev")
    assert_input(query, "query", archive_tables.quarantine_by_reason_query().sql)
    assert_input(query, "workgroup", "iot-analytics-dev")


def test_analyst_policy_grants_exactly_querying_this_archive(dev):
    bucket_arn = f"arn:aws:s3:::{archive_bucket(dev)}"
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    policy = dev.one("aws:iam/policy:Policy")
    assert_input(policy, "name", "iot-archive-analyst-policy-dev")
    assert_input(policy, "tags.Environment", "dev")
    assert policy_statements(policy) == {
        "RunQueriesInWorkgroup": {
            "Sid": "RunQueriesInWorkgroup", "Effect": "Allow",
            "Action": ["athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
                       "athena:BatchGetQueryExecution", "athena:ListQueryExecutions", "athena:GetQueryResults",
                       "athena:GetQueryResultsStream", "athena:GetWorkGroup", "athena:GetNamedQuery",
                       "athena:BatchGetNamedQuery", "athena:ListNamedQueries"],
            "Resource": [f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/iot-analytics-dev"]},
        "ReadArchiveCatalog": {
            "Sid": "ReadArchiveCatalog", "Effect": "Allow",
            "Action": ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                       "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition"],
            "Resource": [f"{glue}:catalog", f"{glue}:database/iot_sensor_archive_dev", f"{glue}:database/default",
                         f"{glue}:table/iot_sensor_archive_dev/readings",
                         f"{glue}:table/iot_sensor_archive_dev/quarantine"]},
        "LocateArchiveBucket": {"Sid": "LocateArchiveBucket", "Effect": "Allow", "Action": ["s3:GetBucketLocation"],
                                "Resource": [bucket_arn]},
        "ListArchivePrefixes": {
            "Sid": "ListArchivePrefixes", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": ["raw/*", "quarantine/*", "athena-results/*"]}}},
        "ReadArchiveObjects": {"Sid": "ReadArchiveObjects", "Effect": "Allow", "Action": ["s3:GetObject"],
                               "Resource": [f"{bucket_arn}/raw/*", f"{bucket_arn}/quarantine/*"]},
        "WriteQueryResults": {
            "Sid": "WriteQueryResults", "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": [f"{bucket_arn}/athena-results/*"]},
        "UseStackKeyForArchiveObjects": {
            "Sid": "UseStackKeyForArchiveObjects", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [key_arn(dev)],
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"},
                          "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]}}},
    }


def test_analyst_role_is_assumable_only_from_this_account_and_has_the_policy(dev):
    role = dev.one("aws:iam/role:Role", "iot-dev-analytics-analyst-role")
    assert_input(role, "name", "iot-archive-analyst-dev")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [{
        "Sid": "AssumedFromThisAccount", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole"]}]
    attachment = dev.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "iot-dev-analytics-analyst-policy-attachment")
    assert_input(attachment, "role", "iot-archive-analyst-dev")
    assert_input(attachment, "policyArn", f"arn:aws:iam::{ACCOUNT}:policy/iot-archive-analyst-policy-dev")


def test_query_layer_is_parented_to_the_analytics_component(dev):
    component = dev.one("iotpipeline:index:Analytics")
    children = [r for r in dev.resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == sorted(
        [DATABASE, TABLE, TABLE, WORKGROUP, NAMED_QUERY, NAMED_QUERY, "aws:iam/policy:Policy", "aws:iam/role:Role",
         "aws:iam/rolePolicyAttachment:RolePolicyAttachment"])


def test_docs_describe_every_column():
    from harness.stack_config import PROJECT_DIR

    text = (PROJECT_DIR / "docs" / "analytics.md").read_text()
    missing = [c.name for table in archive_tables.TABLES for c in table.columns if f"`{c.name}`" not in text]
    assert missing == [], f"docs/analytics.md does not describe {missing}"
