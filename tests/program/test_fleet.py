"""Device authentication: thing type, device policy, things with CSR-issued certificates."""

from harness.stack_config import PROJECT_DIR
from tests.program.assertions import assert_input, policy_statements

IOT_ARN = "arn:aws:iot:ap-southeast-1:123456789012"


def test_thing_type_names_the_environment(dev):
    assert_input(dev.one("aws:iot/thingType:ThingType"), "name", "manufacturing-sensor-dev")


def test_device_policy_pins_each_certificate_to_its_own_thing_and_topic(dev):
    policy = dev.one("aws:iot/policy:Policy")
    assert_input(policy, "name", "iot-device-policy-dev")
    statements = policy_statements(policy)
    assert statements["ConnectAsOwnThing"]["Action"] == ["iot:Connect"]
    assert statements["ConnectAsOwnThing"]["Resource"] == [f"{IOT_ARN}:client/${{iot:Connection.Thing.ThingName}}"]
    assert statements["ConnectAsOwnThing"]["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    assert statements["PublishOwnTelemetry"]["Action"] == ["iot:Publish"]
    assert statements["PublishOwnTelemetry"]["Resource"] == [
        f"{IOT_ARN}:topic/factory/dev/telemetry/${{iot:Connection.Thing.Attributes[deviceId]}}"
    ]
    assert statements["PublishOwnTelemetry"]["Condition"] == {
        "StringEquals": {"iot:Connection.Thing.ThingTypeName": "manufacturing-sensor-dev"}
    }
    assert set(statements) == {"ConnectAsOwnThing", "PublishOwnTelemetry"}


def test_configured_device_is_a_thing_with_a_certificate_from_its_csr(dev):
    thing = dev.one("aws:iot/thing:Thing")
    # The thing name carries the stack; the attribute the device policy reads is the device's own id.
    assert_input(thing, "name", "press-001_dev")
    assert_input(thing, "attributes", {"deviceId": "press-001"})
    assert_input(thing, "thingTypeName", "manufacturing-sensor-dev")
    certificate = dev.one("aws:iot/certificate:Certificate")
    assert_input(certificate, "active", True)
    assert_input(certificate, "csr", (PROJECT_DIR / "devices" / "press-001.csr").read_text())
    assert "privateKey" not in certificate.inputs
    attachment = dev.one("aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment")
    assert_input(attachment, "thing", "press-001_dev")
    assert_input(attachment, "principal", certificate.outputs["arn"])
    policy_attachment = dev.one("aws:iot/policyAttachment:PolicyAttachment")
    assert_input(policy_attachment, "policy", "iot-device-policy-dev")
    assert_input(policy_attachment, "target", certificate.outputs["arn"])


def test_stack_without_devices_registers_none(prod):
    assert prod.of_type("aws:iot/thing:Thing") == []
    assert prod.of_type("aws:iot/certificate:Certificate") == []
