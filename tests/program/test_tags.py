"""Every taggable resource carries the stack's tags in its own inputs."""

import importlib
import inspect

import pytest

from harness.stack_config import stack_names

REQUIRED_TAG_KEYS = ("Project", "Environment", "ManagedBy", "Owner", "CostCenter")


def _is_taggable(type_token: str) -> bool:
    _, module_path, class_name = type_token.split(":")
    module_name = module_path.split("/")[0]
    module = importlib.import_module(f"pulumi_aws.{'lambda_' if module_name == 'lambda' else module_name}")
    return "tags" in inspect.signature(getattr(module, class_name)._internal_init).parameters


@pytest.mark.parametrize("stack", stack_names())
def test_every_taggable_resource_has_the_stack_tags(stack, program_run):
    run = program_run(stack)
    taggable = [r for r in run.resources if r.custom and r.type.startswith("aws:") and _is_taggable(r.type)]
    assert len(taggable) >= 15
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        for key in REQUIRED_TAG_KEYS:
            assert tags.get(key), f"{resource.urn}: tag {key} missing or empty in {tags!r}"
        assert tags["Environment"] == run.config["iot-sensor-pipeline:environmentSuffix"], resource.urn
        assert tags["Owner"] == run.config["iot-sensor-pipeline:owner"], resource.urn
        assert tags["CostCenter"] == run.config["iot-sensor-pipeline:costCenter"], resource.urn
