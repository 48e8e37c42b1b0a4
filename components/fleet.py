"""The devices: their thing type, the policy that pins each certificate to its own thing
and topic, and the things registered from the stack's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.context import StackContext
from components.iam import document, statement
from components.config_table import DeviceSpec
from handler.message_format import thing_name, topic_prefix

# IoT policy variables: they resolve to the thing the connection's certificate is
# attached to, and only when the MQTT client id equals that thing's name.
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
# The thing attribute holding the device's own id: thing names carry the stack
# suffix (unique per account), topics and messages the device id.
DEVICE_ID_ATTRIBUTE = "deviceId"
DEVICE_ID_VARIABLE = f"${{iot:Connection.Thing.Attributes[{DEVICE_ID_ATTRIBUTE}]}}"


def thing_type_name(suffix: str) -> str:
    return f"manufacturing-sensor-{suffix}"


@dataclass
class FleetArgs:
    context: StackContext
    devices: Sequence[DeviceSpec]


class Fleet(pulumi.ComponentResource):
    """Thing type, device policy, and one thing with a CSR-issued certificate per configured device.

    Certificates are issued from certificate signing requests, so private keys
    stay on the devices and never enter the Pulumi state.
    """

    thing_type: aws.iot.ThingType
    device_policy: aws.iot.Policy
    certificates: dict[str, aws.iot.Certificate]

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iotpipeline:index:Fleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._suffix = args.context.suffix
        self.thing_type = aws.iot.ThingType(
            f"{name}-thing-type",
            name=thing_type_name(args.context.suffix),
            properties={
                "description": "A manufacturing sensor publishing telemetry over MQTT",
                "searchable_attributes": ["site", "line"],
            },
            tags=args.context.tags,
            opts=child,
        )
        self.device_policy = aws.iot.Policy(
            f"{name}-device-policy",
            name=f"iot-device-policy-{args.context.suffix}",
            policy=self._device_policy(args),
            tags=args.context.tags,
            opts=child,
        )
        self.certificates = {}
        for device in args.devices:
            self.certificates[device.name] = self._register_device(name, device)
        self.register_outputs({"thingTypeName": self.thing_type.name, "devicePolicyName": self.device_policy.name})

    @staticmethod
    def _device_policy(args: FleetArgs) -> pulumi.Output[str]:
        context = args.context
        return document(
            statement(
                "ConnectAsOwnThing",
                ["iot:Connect"],
                [context.arn("iot", f"client/{THING_NAME_VARIABLE}")],
                # Refuse certificates that are not attached to a thing at all.
                condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            ),
            # Only to its own topic in this stack's namespace: the device id comes from the
            # connecting thing's attribute, which only the account (UpdateThing) can set.
            # The thing type keeps another stack's things out even if one were given this policy.
            statement(
                "PublishOwnTelemetry",
                ["iot:Publish"],
                [context.arn("iot", f"topic/{topic_prefix(context.suffix)}/{DEVICE_ID_VARIABLE}")],
                condition={"StringEquals": {"iot:Connection.Thing.ThingTypeName": thing_type_name(context.suffix)}},
            ),
        )

    def _register_device(self, name: str, device: DeviceSpec) -> aws.iot.Certificate:
        child = pulumi.ResourceOptions(parent=self)
        thing = aws.iot.Thing(
            f"{name}-{device.name}",
            name=thing_name(self._suffix, device.name),
            thing_type_name=self.thing_type.name,
            attributes={DEVICE_ID_ATTRIBUTE: device.name},
            opts=child,
        )
        certificate = aws.iot.Certificate(
            f"{name}-{device.name}-certificate",
            csr=device.csr_path.read_text(),
            active=True,
            opts=child,
        )
        aws.iot.ThingPrincipalAttachment(
            f"{name}-{device.name}-thing-attachment",
            thing=thing.name,
            principal=certificate.arn,
            opts=child,
        )
        aws.iot.PolicyAttachment(
            f"{name}-{device.name}-policy-attachment",
            policy=self.device_policy.name,
            target=certificate.arn,
            opts=child,
        )
        return certificate
