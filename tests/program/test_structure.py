"""Every resource belongs to a component named after its role, and the stack exports what users need."""


COMPONENT_TYPES = {
    "iotpipeline:index:SensorPipeline", "iotpipeline:index:Encryption", "iotpipeline:index:Storage",
    "iotpipeline:index:Ingestion", "iotpipeline:index:Fleet", "iotpipeline:index:Processing",
    "iotpipeline:index:Audit", "iotpipeline:index:SecureBucket", "iotpipeline:index:Monitoring",
    "iotpipeline:index:Analytics", "iotpipeline:index:AccessLogs", "iotpipeline:index:IotLogging",
}


def test_every_resource_is_parented_to_a_component_and_named_after_it(dev):
    by_urn = {resource.urn: resource for resource in dev.resources}
    for resource in dev.resources:
        if resource.type == "iotpipeline:index:SensorPipeline":
            assert resource.parent.endswith("pulumi:pulumi:Stack::iot-sensor-pipeline-dev")
            continue
        parent = by_urn.get(resource.parent)
        assert parent is not None, f"{resource.urn}: parent {resource.parent!r} is not a component of the program"
        assert parent.type in COMPONENT_TYPES, f"{resource.urn}: parent is a {parent.type}"
        assert resource.name.startswith(f"{parent.name}-"), f"{resource.urn}: not named after {parent.name}"


def test_component_type_tokens_follow_package_index_noun(dev):
    components = {resource.type for resource in dev.resources if not resource.custom}
    assert components <= COMPONENT_TYPES, components - COMPONENT_TYPES


def test_stack_exports_what_users_need(dev):
    outputs = dev.stack_outputs
    assert outputs["streamName"] == "iot-sensor-stream-dev"
    assert outputs["streamArn"] == "arn:aws:kinesis:ap-southeast-1:123456789012:stream/iot-sensor-stream-dev"
    assert outputs["metricsTableName"] == "sensor-metrics-dev"
    assert outputs["archiveBucketName"].startswith("iot-sensor-data-dev-")
    assert outputs["auditBucketName"].startswith("iot-cloudtrail-logs-dev-")
    assert outputs["processorFunctionName"] == "iot-processor-dev"
    assert outputs["kmsKeyArn"].startswith("arn:aws:kms:ap-southeast-1:123456789012:key/")
    assert outputs["kmsKeyAlias"] == "alias/iot-manufacturing-dev"
    assert outputs["iotEndpoint"].endswith("-ats.iot.ap-southeast-1.amazonaws.com")
    assert outputs["telemetryTopicPattern"] == "factory/dev/telemetry/+"
    assert outputs["deviceThingNames"] == {"press-001": "press-001_dev"}
    assert outputs["thingTypeName"] == "manufacturing-sensor-dev"
    assert set(outputs["deviceCertificates"]) == {"press-001"}


def test_first_preview_declares_the_same_resources_with_unknown_arns(dev, dev_preview):
    assert sorted(r.urn for r in dev_preview.resources) == sorted(r.urn for r in dev.resources)
    mapping = dev_preview.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert type(mapping.inputs["eventSourceArn"]).__name__ == "Unknown"


def test_the_program_reads_only_the_handlers_contract_modules():
    """components/ and __main__.py import the message format, the layout and the detector-settings
    validator, nothing else of the Lambda package: what the program declares cannot depend on how
    the processor is written."""
    import ast
    from pathlib import Path

    contract = {"handler.layout", "handler.message_format", "handler.detector_settings"}
    root = Path(__file__).resolve().parents[2]
    imported = {}
    for path in [root / "__main__.py", *sorted((root / "components").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "handler":
                names = ({f"handler.{alias.name}" for alias in node.names} if node.module == "handler"
                         else {node.module})
                imported.setdefault(path.name, set()).update(names)
            elif isinstance(node, ast.Import):
                imported.setdefault(path.name, set()).update(
                    alias.name for alias in node.names if alias.name.split(".")[0] == "handler")
    assert {name: modules - contract for name, modules in imported.items() if modules - contract} == {}
