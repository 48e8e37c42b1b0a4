"""The pipeline's CrossGuard policy pack: `pulumi preview --policy-pack policies`."""

from pulumi_policy import PolicyPack

import access
import encryption
import least_privilege
import reliability
import retention
import stack
import tagging

PolicyPack(
    name="iot-sensor-pipeline-policies",
    policies=[
        *encryption.POLICIES,
        *retention.POLICIES,
        *tagging.POLICIES,
        *access.POLICIES,
        *least_privilege.POLICIES,
        *reliability.POLICIES,
        *stack.POLICIES,
    ],
)
