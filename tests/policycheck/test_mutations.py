"""The mutation engine on the real program: targets found by the part they play on every stack and in
both modes, additions wired to their target as a program would wire them, and the edits that derive
their values from the resource they change. (Whether each mutation is caught: test_check.py.)"""

import json

import pytest
from pulumi.runtime.rpc import UNKNOWN

from harness.mocks import MOCK_ACCOUNT_ID, ProgramRun
from harness.stack_config import stack_names
from policycheck import catalogue, roles
from policycheck.check import analyzed_resources
from policycheck.injection import Mutation, apply, widen_policy_variables, widen_service_grant
from policycheck.roles import DeclaredResources, TargetNotFound

MODES = {"first-preview": True, "update": False}


@pytest.fixture(params=[(stack, mode) for stack in stack_names() for mode in MODES], ids="-".join)
def any_run(request, program_run) -> ProgramRun:
    stack, mode = request.param
    return program_run(stack, MODES[mode])


@pytest.fixture
def dev(program_run) -> ProgramRun:
    return program_run("dev")


@pytest.fixture
def dev_preview(program_run) -> ProgramRun:
    return program_run("dev", True)


def declared(run: ProgramRun) -> DeclaredResources:
    return DeclaredResources(analyzed_resources(run))


def test_every_target_is_found_on_every_stack_in_both_modes(any_run):
    resources = declared(any_run)
    for mutation in catalogue.MUTATIONS:
        assert mutation.target.find(resources).type == mutation.target.type, mutation.name


def test_the_roles_are_the_resources_the_program_wires_together(dev):
    resources = declared(dev)
    function = roles.processor(resources)
    archive = roles.archive_bucket(resources)
    assert archive.outputs["bucket"] in function.inputs["environment"]["variables"].values()
    assert roles.audit_bucket(resources).outputs["bucket"] == dev.one(roles.TRAIL).inputs["s3BucketName"]
    assert roles.processor_role(resources).outputs["arn"] == function.inputs["role"]
    assert roles.processor_log_group(resources).inputs["name"] == function.inputs["loggingConfig"]["logGroup"]
    versioning = catalogue.companion(catalogue.VERSIONING, roles.ARCHIVE).find(resources)
    assert versioning.inputs["bucket"] == archive.outputs["bucket"]
    alarm = catalogue.ITERATOR_AGE_ALARM.find(resources)
    assert (alarm.inputs["metricName"], alarm.inputs["dimensions"]) == (
        "IteratorAge", {"FunctionName": function.inputs["name"]})
    assert "Root" in catalogue.ROOT_ACCOUNT_USE_FILTER.find(resources).inputs["pattern"]


def test_a_target_the_program_does_not_declare_stops_the_run_with_the_part_it_plays(dev):
    without_trail = [r for r in analyzed_resources(dev) if r.type != roles.TRAIL]
    mutation = Mutation("delete the trail's bucket", "s3-bucket-companion-resources", roles.AUDIT_BUCKET, remove=True)
    with pytest.raises(TargetNotFound, match="expected one resource as the stack's Trail, found 0"):
        apply(mutation, without_trail)


def mutation_named(name: str) -> Mutation:
    return next(m for m in catalogue.MUTATIONS if m.name == name)


@pytest.mark.parametrize("mode", list(MODES))
def test_an_added_resource_refers_to_its_target_as_a_program_would(dev, dev_preview, mode):
    run = dev_preview if MODES[mode] else dev
    resources = analyzed_resources(run)
    mutated, urn = apply(mutation_named("public-read ACL on a bucket"), resources)
    archive = roles.archive_bucket(DeclaredResources(resources))
    acl = mutated[-1]
    assert (acl.urn, acl.type, acl.parent) == (urn, "aws:s3/bucketAcl:BucketAcl", archive.parent)
    # A sibling of the archive: the same parents' types before its own.
    parents_types = archive.urn.split("::")[2].rsplit("$", 1)[0]
    assert urn.split("::")[2:] == [f"{parents_types}$aws:s3/bucketAcl:BucketAcl", "public-read"]
    # The archive's name is the provider's to choose: known after an update, unknown in a first preview.
    assert acl.inputs == {"acl": "public-read", "bucket": UNKNOWN if run.preview else archive.outputs["bucket"]}
    assert acl.property_dependencies == {"bucket": [archive.urn]}


def policy_statements(properties: dict, path: str = "policy") -> list[dict]:
    return json.loads(properties[path])["Statement"]


def test_widening_a_service_grant_keeps_its_account_and_region_and_drops_the_names(dev):
    key = dev.one("aws:kms/key:Key")
    properties = {"policy": key.inputs["policy"]}
    widen_service_grant("logs.")(properties)
    before, after = policy_statements(key.inputs), policy_statements(properties)
    region = dev.config["aws:region"]
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert [new["Principal"]["Service"] for _, new in changed] == [f"logs.{region}.amazonaws.com"]
    (old, new), = changed
    assert old["Condition"].keys() == new["Condition"].keys()
    assert list(new["Condition"].values()) == [
        {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{MOCK_ACCOUNT_ID}:log-group:*"}]


def test_widening_the_device_policy_replaces_the_things_own_name_by_any(dev):
    device_policy = dev.one("aws:iot/policy:Policy")
    properties = {"policy": device_policy.inputs["policy"]}
    widen_policy_variables("policy", "iot:Publish")(properties)
    publish = next(s for s in policy_statements(properties) if s["Action"] == ["iot:Publish"])
    own = next(s for s in policy_statements(device_policy.inputs) if s["Action"] == ["iot:Publish"])
    assert [resource.rsplit("/", 1)[0] for resource in own["Resource"]] == [
        resource.rsplit("/", 1)[0] for resource in publish["Resource"]]
    assert all(resource.endswith("/*") and "${" not in resource for resource in publish["Resource"])


def test_an_edit_of_a_document_unknown_in_a_first_preview_is_not_applicable(dev_preview):
    with pytest.raises(ValueError):
        apply(mutation_named("add a wildcard action to an IAM policy"), analyzed_resources(dev_preview))
