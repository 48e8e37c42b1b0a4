"""The program uses pulumi-aws 7.x's current API only.

A deprecated name reaches a user as a Python DeprecationWarning, as a warning
pulumi logs during preview, or (for an argument passed as a keyword) only as a
deprecated property of the provider's Args class: all three are checked.
"""

import importlib
import re
import warnings

import pytest

from harness.mocks import run_program
from harness.stack_config import stack_names


def _python_name(wire_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", wire_name).lower()


def _args_class(type_token: str):
    package, module_path, class_name = type_token.split(":")
    module_name = module_path.split("/")[0]
    module = importlib.import_module(f"pulumi_aws.{module_name}_" if module_name == "lambda" else f"pulumi_aws.{module_name}")
    return getattr(module, f"{class_name}Args")


@pytest.mark.parametrize("stack", stack_names())
def test_program_raises_no_deprecation_warning(stack, dev):
    # `dev` has imported the provider modules already: what is recorded now is
    # what the program itself triggers, not the provider's import-time noise.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_program(stack)
    deprecations = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if issubclass(w.category, DeprecationWarning)]
    assert deprecations == []
    assert [message for message in run.warnings if "deprecated" in message.lower()] == []


def test_no_resource_sets_a_deprecated_argument(dev):
    for resource in dev.resources:
        if not resource.custom or not resource.type.startswith("aws:"):
            continue
        args_class = _args_class(resource.type)
        for wire_name in resource.inputs:
            prop = getattr(args_class, _python_name(wire_name), None)
            getter = getattr(prop, "fget", None)
            assert not hasattr(getter, "_pulumi_deprecated_callable"), (
                f"{resource.urn}: input {wire_name} is deprecated in pulumi-aws"
            )


def test_deprecated_argument_check_can_fail():
    # The check above looks properties up by name: make sure it finds a known deprecated one.
    getter = _args_class("aws:s3/bucket:Bucket").versioning.fget
    assert hasattr(getter, "_pulumi_deprecated_callable")
