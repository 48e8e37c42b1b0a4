"""Deploys the manufacturing IoT sensor pipeline for one stack."""

from pathlib import Path

import pulumi

from components.pipeline import SensorPipeline
from components.settings import ConfigError, configured_keys, read_settings
from handler.message_format import thing_name, topic_filter

config = pulumi.Config()
try:
    settings = read_settings(config.get, Path(__file__).resolve().parent, set_keys=configured_keys(config.name))
except ConfigError as error:
    # RunError: the CLI shows the message alone, without a Python traceback.
    raise pulumi.RunError(str(error)) from None

pipeline = SensorPipeline(f"iot-{settings.suffix}", settings)

pulumi.export("streamName", pipeline.ingestion.stream.name)
pulumi.export("streamArn", pipeline.ingestion.stream.arn)
pulumi.export("metricsTableName", pipeline.storage.table.name)
pulumi.export("archiveBucketName", pipeline.storage.archive.bucket.bucket)
if pipeline.audit is not None:  # auditTrail: none leaves the trail to the organization
    pulumi.export("auditBucketName", pipeline.audit.bucket.bucket.bucket)
pulumi.export("accessLogBucketName", pipeline.access_logs.bucket.bucket.bucket)
pulumi.export("processorFunctionName", pipeline.processing.function.name)
pulumi.export("kmsKeyArn", pipeline.encryption.key.arn)
pulumi.export("kmsKeyAlias", pipeline.encryption.alias.name)
pulumi.export("iotEndpoint", pipeline.iot_endpoint)
pulumi.export("telemetryTopicPattern", topic_filter(settings.suffix))
# A device connects with its thing name as MQTT client id and publishes with its own id.
pulumi.export("deviceThingNames", {device.name: thing_name(settings.suffix, device.name) for device in settings.devices})
pulumi.export("thingTypeName", pipeline.fleet.thing_type.name)
pulumi.export("topicRuleName", pipeline.ingestion.rule.name)
pulumi.export("alarmTopicArn", pipeline.monitoring.topic.arn)
pulumi.export("dashboardName", pipeline.monitoring.dashboard.dashboard_name)
pulumi.export(
    "deviceCertificates",
    {device: certificate.certificate_pem for device, certificate in pipeline.fleet.certificates.items()},
)
