"""The SDK behaviour harness/pulumi_internals.py relies on: these fail, named, when a Pulumi upgrade
changes it (see that module for why each is needed)."""

import contextlib
import textwrap

import pulumi
from google.protobuf import struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

from harness import mocks
from harness.mocks import RecordingMonitor, run_program
from harness.pulumi_internals import EngineUrnMonitor, wire_properties
from harness.stack_config import project_name


class EchoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise NotImplementedError(args.token)


def test_the_mock_monitor_names_what_it_registers_through_make_urn():
    monitor = EngineUrnMonitor(EchoMocks(), stack="s", project="p")
    response = monitor.RegisterResource(resource_pb2.RegisterResourceRequest(
        type="test:index:Leaf", name="leaf", custom=True, parent="urn:pulumi:s::p::test:index:Outer$test:index:Inner::in"))
    assert response.urn == "urn:pulumi:s::p::test:index:Outer$test:index:Inner$test:index:Leaf::leaf"
    assert list(monitor.get_registered_resources()) == [response.urn]


def test_the_wire_deserializer_keeps_unknowns_where_they_are():
    properties = struct_pb2.Struct()
    properties.update({"known": "x", "nested": {"unknown": rpc.UNKNOWN}, "unknown": rpc.UNKNOWN})
    values = wire_properties(properties)
    assert values["known"] == "x"
    assert isinstance(values["unknown"], Unknown) and isinstance(values["nested"]["unknown"], Unknown)


EXPORTS = textwrap.dedent('''
    import pulumi
    import pulumi_aws as aws

    pulumi.export("literal", "as written")
    pulumi.export("arn", aws.sns.Topic("topic").arn)
''')


def test_a_first_previews_unknown_outputs_are_kept_and_each_run_has_its_own_stack(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text(EXPORTS)
    update = run_program("dev", program=program)
    preview = run_program("prod", program=program, preview=True)
    assert update.stack_outputs == {"literal": "as written", "arn": update.one("aws:sns/topic:Topic").outputs["arn"]}
    assert preview.stack_outputs["literal"] == "as written"
    assert isinstance(preview.stack_outputs["arn"], Unknown)
    # A run after another gets a root stack of its own (set_mocks makes one only when there is none).
    assert preview.one("aws:sns/topic:Topic").parent.startswith(f"urn:pulumi:prod::{project_name()}::pulumi:pulumi:Stack::")


def test_the_harness_runs_send_no_stack_traces_which_the_sdk_otherwise_walks_for_each_resource(tmp_path, monkeypatch):
    program = tmp_path / "__main__.py"
    program.write_text(EXPORTS)
    sent: list[tuple[int, bool]] = []
    register = RecordingMonitor.RegisterResource

    def recording(self, request):
        if request.type == "aws:sns/topic:Topic":
            sent.append((len(request.stackTrace.frames), request.HasField("sourcePosition")))
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", recording)
    run_program("dev", program=program)
    monkeypatch.setattr(mocks, "without_stack_traces", contextlib.nullcontext)
    run_program("dev", program=program)
    [(harness_frames, harness_position), (sdk_frames, sdk_position)] = sent
    assert (harness_frames, harness_position) == (0, False)
    assert sdk_frames > 0 and sdk_position  # what `_get_stack_trace` sends when the harness leaves it in place
