"""Querying the raw archive: a Glue database with one table per archive prefix, an
Athena workgroup, named queries, and the analysts' access."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import archive_tables
from components.archive_tables import ArchiveTable, NamedQuery
from components.context import StackContext
from components.iam import document, statement

ATHENA_ENGINE_VERSION = "Athena engine version 3"
# The SerDe and formats Athena documents for gzip (by file extension) JSON lines.
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

# Running queries in this workgroup and reading its saved queries. Not
# athena:ListWorkGroups: AWS authorizes it only on "*" (the console's workgroup
# picker uses it; an account may grant it separately).
ATHENA_QUERY_ACTIONS = [
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
    "athena:GetQueryExecution",
    "athena:BatchGetQueryExecution",
    "athena:ListQueryExecutions",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "athena:GetWorkGroup",
    "athena:GetNamedQuery",
    "athena:BatchGetNamedQuery",
    "athena:ListNamedQueries",
]
# What Athena calls in Glue, with the caller's credentials, to plan a query.
GLUE_READ_ACTIONS = [
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
]


@dataclass
class AnalyticsArgs:
    context: StackContext
    kms_key_arn: pulumi.Input[str]
    archive_bucket_name: pulumi.Input[str]
    archive_bucket_arn: pulumi.Input[str]
    # Athena cancels a query that would scan more: a runaway query costs at most this
    # (at least Athena's minimum of 10 MiB, which the config table enforces).
    bytes_scanned_cutoff_mb: int
    # The device-time query's partition margins (components/archive_tables.py).
    maximum_record_age_seconds: int
    late_arrival_hours: int
    # Lets `pulumi destroy` delete the workgroup with its saved queries and history.
    force_destroy: bool


def database_name(suffix: str) -> str:
    # Athena reads names with hyphens only in backquotes: underscores keep queries plain.
    return f"iot_sensor_archive_{suffix.replace('-', '_')}"


def workgroup_name(suffix: str) -> str:
    return f"iot-analytics-{suffix}"


class Analytics(pulumi.ComponentResource):
    """Athena over the archive bucket, without a crawler: partition projection over
    the processor's `dt=YYYY-MM-DD/hour=HH` layout.

    Results go to `athena-results/` of the archive bucket under the stack's key;
    the workgroup enforces that, so a client cannot send results elsewhere or
    unencrypted. Analysts use the role (or attach the managed policy to their
    own principals): read the two tables and their prefixes, run queries in
    this workgroup, write its results. Athena skips objects the lifecycle moved
    to Glacier until they are restored (README, "Query the archive").
    """

    database: aws.glue.CatalogDatabase
    tables: dict[str, aws.glue.CatalogTable]
    workgroup: aws.athena.Workgroup
    named_queries: dict[str, aws.athena.NamedQuery]
    analyst_policy: aws.iam.Policy
    analyst_role: aws.iam.Role

    def __init__(self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Analytics", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        suffix = args.context.suffix
        self.database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=database_name(suffix),
            description="Raw readings and quarantined records of the sensor archive",
            tags=args.context.tags,
            opts=child,
        )
        self.tables = {table.name: self._create_table(name, table, args) for table in archive_tables.TABLES}
        results_location = pulumi.Output.concat("s3://", args.archive_bucket_name, "/",
                                                archive_tables.ATHENA_RESULTS_PREFIX, "/")
        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=workgroup_name(suffix),
            description="Queries over the sensor archive; results encrypted with the stack's key",
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff_mb * 1024 * 1024,
                "engine_version": {"selected_engine_version": ATHENA_ENGINE_VERSION},
                "result_configuration": {
                    "output_location": results_location,
                    "encryption_configuration": {"encryption_option": "SSE_KMS", "kms_key_arn": args.kms_key_arn},
                    # Athena refuses to write results to a bucket another account owns.
                    "expected_bucket_owner": args.context.account_id,
                },
            },
            state="ENABLED",
            force_destroy=args.force_destroy,
            tags=args.context.tags,
            opts=child,
        )
        queries = [
            archive_tables.device_readings_query(args.maximum_record_age_seconds, args.late_arrival_hours),
            archive_tables.quarantine_by_reason_query(),
        ]
        self.named_queries = {query.key: self._create_named_query(name, query, suffix) for query in queries}
        self._create_analyst_access(name, args)
        self.register_outputs({
            "databaseName": self.database.name,
            "workgroupName": self.workgroup.name,
            "analystRoleArn": self.analyst_role.arn,
            "analystPolicyArn": self.analyst_policy.arn,
        })

    def _create_table(self, name: str, table: ArchiveTable, args: AnalyticsArgs) -> aws.glue.CatalogTable:
        location = pulumi.Output.concat("s3://", args.archive_bucket_name, "/", table.prefix)
        return aws.glue.CatalogTable(
            f"{name}-{table.name}-table",
            name=table.name,
            database_name=self.database.name,
            description=table.description,
            table_type="EXTERNAL_TABLE",
            parameters=location.apply(archive_tables.table_parameters),
            partition_keys=[{"name": key.name, "type": key.type, "comment": key.comment}
                            for key in archive_tables.PARTITION_KEYS],
            storage_descriptor={
                "location": pulumi.Output.concat(location, "/"),
                "input_format": TEXT_INPUT_FORMAT,
                "output_format": TEXT_OUTPUT_FORMAT,
                "ser_de_info": {"serialization_library": JSON_SERDE},
                "columns": [{"name": column.name, "type": column.type, "comment": column.comment}
                            for column in table.columns],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_named_query(self, name: str, query: NamedQuery, suffix: str) -> aws.athena.NamedQuery:
        return aws.athena.NamedQuery(
            f"{name}-{query.key}-query",
            name=f"{query.key}-{suffix}",
            description=query.description,
            database=self.database.name,
            workgroup=self.workgroup.name,
            query=query.sql,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_analyst_access(self, name: str, args: AnalyticsArgs) -> None:
        context = args.context
        bucket_arn = args.archive_bucket_arn

        def objects(prefix: str) -> pulumi.Output[str]:
            return pulumi.Output.concat(bucket_arn, "/", prefix, "/*")

        catalog = context.arn("glue", "catalog")
        database = context.arn("glue", pulumi.Output.concat("database/", self.database.name))
        tables = [context.arn("glue", pulumi.Output.concat("table/", self.database.name, "/", table.name))
                  for table in archive_tables.TABLES]
        data_prefixes = [table.prefix for table in archive_tables.TABLES]
        results = archive_tables.ATHENA_RESULTS_PREFIX
        policy_document = document(
            statement("RunQueriesInWorkgroup", ATHENA_QUERY_ACTIONS,
                      [context.arn("athena", pulumi.Output.concat("workgroup/", self.workgroup.name))]),
            # Athena looks up the account's `default` database whatever the query names.
            statement("ReadArchiveCatalog", GLUE_READ_ACTIONS,
                      [catalog, database, context.arn("glue", "database/default"), *tables]),
            statement("LocateArchiveBucket", ["s3:GetBucketLocation"], [bucket_arn]),
            statement("ListArchivePrefixes", ["s3:ListBucket"], [bucket_arn],
                      condition={"StringLike": {"s3:prefix": [f"{p}/*" for p in (*data_prefixes, results)]}}),
            statement("ReadArchiveObjects", ["s3:GetObject"], [objects(p) for p in data_prefixes]),
            statement("WriteQueryResults",
                      ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                      [objects(results)]),
            # Objects are SSE-KMS with the bucket key: S3 asks KMS for the bucket's data
            # key, with the bucket's ARN as encryption context. Only through S3, only here.
            statement("UseStackKeyForArchiveObjects", ["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn],
                      condition={
                          "StringEquals": {"kms:ViaService": pulumi.Output.concat("s3.", context.region,
                                                                                  ".amazonaws.com")},
                          "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
                              bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]},
                      }),
        )
        self.analyst_policy = aws.iam.Policy(
            f"{name}-analyst-policy",
            name=f"iot-archive-analyst-policy-{context.suffix}",
            # A policy's description cannot change without replacing it: names only.
            description=f"Query the sensor archive in Athena workgroup {workgroup_name(context.suffix)}",
            policy=policy_document,
            tags=context.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Trusting the account delegates the choice of who may assume the role to
        # the account's own IAM: a principal needs sts:AssumeRole on it as well.
        self.analyst_role = aws.iam.Role(
            f"{name}-analyst-role",
            name=f"iot-archive-analyst-{context.suffix}",
            description="Analysts querying the sensor archive with Athena",
            assume_role_policy=document(statement(
                "AssumedFromThisAccount", ["sts:AssumeRole"],
                principal={"AWS": pulumi.Output.format("arn:{0}:iam::{1}:root", context.partition,
                                                       context.account_id)},
            )),
            max_session_duration=3600 * 4,
            tags=context.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.analyst_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-analyst-policy-attachment",
            role=self.analyst_role.name,
            policy_arn=self.analyst_policy.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
