"""Every stack file deploys, and production differs from development where it should."""

import pytest

from harness.stack_config import stack_names


@pytest.mark.parametrize("stack", stack_names())
@pytest.mark.parametrize("preview", [True, False], ids=["first-preview", "update"])
def test_every_stack_file_runs(stack, preview, program_run):
    run = program_run(stack, preview=preview)
    assert len([r for r in run.resources if r.custom]) >= 30


def test_stack_files_include_dev_and_prod():
    assert {"dev", "prod"} <= set(stack_names())


def test_prod_keeps_logs_and_stream_data_longer(dev, prod):
    for group in prod.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["retentionInDays"] == 365, group.urn
    for group in dev.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["retentionInDays"] == 30, group.urn


def test_prod_protects_its_data_and_key(prod):
    for type_token in ("aws:kms/key:Key", "aws:dynamodb/table:Table", "aws:s3/bucket:Bucket"):
        for resource in prod.of_type(type_token):
            assert resource.protect, f"{resource.urn}: not protected in prod"


def test_dev_can_be_destroyed(dev):
    for type_token in ("aws:kms/key:Key", "aws:dynamodb/table:Table", "aws:s3/bucket:Bucket"):
        for resource in dev.of_type(type_token):
            assert not resource.protect, f"{resource.urn}: protected in dev"
