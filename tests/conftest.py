"""Shared fixtures: the program's runs under mocks, and the processor against moto's server over
HTTP, with the table and bucket the program declares (provisioned from the dev stack under mocks)."""

from __future__ import annotations

import atexit
import base64
import gc
import gzip
import importlib
import json
import logging
import os
import pickle
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from handler import storage
from handler.message_format import build_message, project, telemetry_topic
from tests.fault_proxy import FaultProxy

if TYPE_CHECKING:
    from harness.mocks import ProgramRun
    from harness.provision import LocalPipeline

# boto3, moto and the harness (the Pulumi SDK) are imported by the fixtures that use them: with
# pytest-xdist the controlling process loads this file too, before it starts the workers, and
# runs no test.

SHARD = "shardId-000000000000"
# The stack the fixtures provision (dev): its topic namespace is the one the records come from.
STACK_SUFFIX = "dev"
NOW_MS = 1_795_081_600_000  # 2026-11-19T09:46:40Z: fixed, so keys and partitions are stable


class LambdaContext:
    function_name = "iot-processor-dev"
    aws_request_id = "test-request"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class RunningContext(LambdaContext):
    """A context whose remaining time runs down with the wall clock, as Lambda's does."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__(remaining_ms)
        self._ends_at = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))


@pytest.fixture(scope="session")
def program_run() -> Iterator[Callable[..., ProgramRun]]:
    """`program_run(stack, preview=False, config_overrides=None)`: the program under mocks with the stack's
    configuration (and those overrides), run once per session for every test that reads the same one.

    A run costs more than most tests that read it, so tests share it, and must only read it: each run
    is pickled when it is made and again at the end of the session, and a run that changed fails the
    session naming its configuration. A test that expects the program to fail runs it itself."""
    from harness.mocks import run_program

    runs: dict[str, tuple[ProgramRun, bytes]] = {}

    def run(stack: str, preview: bool = False, config_overrides: dict[str, object] | None = None) -> ProgramRun:
        key = json.dumps({"stack": stack, "preview": preview, "config_overrides": config_overrides or {}},
                         sort_keys=True)
        if key not in runs:
            made = run_program(stack, preview=preview, config_overrides=config_overrides)
            runs[key] = (made, pickle.dumps(made))
        return runs[key][0]

    yield run
    changed = [key for key, (shared, made) in runs.items() if pickle.dumps(shared) != made]
    assert changed == [], f"a test changed these shared program runs (copy a run before editing it): {changed}"


@pytest.fixture(scope="session")
def local_aws(program_run) -> Iterator[LocalPipeline]:
    from moto.server import ThreadedMotoServer

    from harness.moto_server import patch_moto
    from harness.provision import provision

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    patch_moto()  # the local run's moto fixes: transactions cost what they write, not the table's size
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="ap-southeast-1", AWS_ENDPOINT_URL=endpoint)
    pipeline = provision(program_run(STACK_SUFFIX), endpoint)  # the dev run the program tests read
    os.environ.update(pipeline.function_environment)
    yield pipeline
    server.stop()
    os.environ.clear()
    os.environ.update(previous)


@pytest.fixture(scope="session")
def index(local_aws):
    """The real entry point, imported as Lambda would once the environment is set."""
    return importlib.import_module("handler.index")


@pytest.fixture(scope="session")
def session_stores(local_aws) -> "Stores":
    # Its clients are made once: a pair of boto3 clients costs more CPU than most tests that use them.
    return Stores(local_aws)


@pytest.fixture
def stores(session_stores, index) -> "Stores":
    """Empty table and bucket before each test."""
    session_stores.clear()
    return session_stores


@pytest.fixture
def inject(index, monkeypatch):
    """Register botocore hooks (`inject(event, hook)`) on every client the processor's adapters hand out."""
    hooks: list[tuple[str, object]] = []
    registered: list[tuple[object, str, object]] = []
    original = storage._Clients.for_call

    def for_call(self, deadline):
        client = original(self, deadline)
        for event, hook in hooks:
            if not any(c is client and e == event and h is hook for c, e, h in registered):
                client.meta.events.register(event, hook)
                registered.append((client, event, hook))
        return client

    monkeypatch.setattr(storage._Clients, "for_call", for_call)

    def register(event: str, hook) -> None:
        hooks.append((event, hook))

    yield register
    for client, event, hook in registered:
        client.meta.events.unregister(event, hook)


@pytest.fixture
def fault_proxy(local_aws, index, monkeypatch) -> Iterator[FaultProxy]:
    """The processor talks to moto through tests/fault_proxy.py for this test (new clients, same stores)."""
    proxy = FaultProxy(local_aws.endpoint_url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    # The adapters keep their clients for the container: start this test with none, so they are made for the proxy.
    for adapter in (index.PROCESSOR.table, index.PROCESSOR.archive):
        monkeypatch.setattr(adapter._clients, "_made", {})
    yield proxy
    proxy.stop()


@dataclass(frozen=True)
class Outcome:
    """What deliveries left in the stores, comparable across deliveries: every item, and every archive and
    quarantine line with the number of times it is stored (in any object, any version)."""

    items: list[dict]
    raw: Counter
    quarantine: Counter

    @property
    def episodes(self) -> list[dict]:
        return [item for item in self.items if item.get("item_type", {}).get("S") == "episode"]

    def raw_identities(self) -> Counter:
        return Counter((line["device_id"], line["timestamp"]) for line in map(json.loads, self.raw.elements()))


@dataclass
class Stores:
    pipeline: LocalPipeline

    def __post_init__(self) -> None:
        import boto3

        self.dynamodb = boto3.client("dynamodb", endpoint_url=self.pipeline.endpoint_url)
        self.s3 = boto3.client("s3", endpoint_url=self.pipeline.endpoint_url)

    def items(self) -> list[dict]:
        found, kwargs = [], {"TableName": self.pipeline.table_name}
        while True:
            page = self.dynamodb.scan(**kwargs)
            found.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda i: (i["device_id"]["S"], i["sk"]["S"]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def objects(self) -> dict[str, list[str]]:
        """Every object version's lines, by key (a rewrite would show as a second version)."""
        versions = self.s3.list_object_versions(Bucket=self.pipeline.archive_bucket).get("Versions", [])
        found: dict[str, list[str]] = {}
        for version in sorted(versions, key=lambda v: (v["Key"], v["LastModified"])):
            body = self.s3.get_object(Bucket=self.pipeline.archive_bucket, Key=version["Key"],
                                      VersionId=version["VersionId"])["Body"].read()
            text = gzip.decompress(body).decode() if version["Key"].endswith(".gz") else body.decode()
            found.setdefault(version["Key"], []).append(text)
        return found

    def state(self) -> tuple[list[dict], dict[str, list[str]]]:
        return self.items(), self.objects()

    def clear(self) -> None:
        keys = [{"device_id": item["device_id"], "sk": item["sk"]} for item in self.items()]
        for start in range(0, len(keys), 25):  # BatchWriteItem's limit on AWS (moto takes more)
            self.dynamodb.batch_write_item(RequestItems={self.pipeline.table_name: [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]})
        versions = self.s3.list_object_versions(Bucket=self.pipeline.archive_bucket)
        for version in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            self.s3.delete_object(Bucket=self.pipeline.archive_bucket, Key=version["Key"],
                                  VersionId=version["VersionId"])

    def outcome(self) -> Outcome:
        lines: dict[str, Counter] = {"raw/": Counter(), "quarantine/": Counter()}
        for key, versions in self.objects().items():
            for prefix, counter in lines.items():
                if key.startswith(prefix):
                    counter.update(line for content in versions for line in content.splitlines())
        return Outcome(self.items(), lines["raw/"], lines["quarantine/"])

    def archived_lines(self, prefix: str) -> list[dict]:
        return [json.loads(line) for key, versions in self.objects().items() if key.startswith(prefix)
                for content in versions for line in content.splitlines()]


@dataclass
class BatchBuilder:
    """Kinesis records as the topic rule would put them, with increasing sequence numbers."""

    next_sequence: int = 49_000_000_000_000_000_000_000_000_000_000_000_000_000_000_001
    records: list[dict] = field(default_factory=list)

    def raw(self, data: bytes, partition_key: str = "unknown") -> dict:
        sequence = str(self.next_sequence)
        self.next_sequence += 1
        record = {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key, "sequenceNumber": sequence,
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": NOW_MS / 1000},
            "eventSource": "aws:kinesis", "eventID": f"{SHARD}:{sequence}", "eventName": "aws:kinesis:record",
            "eventSourceARN": "arn:aws:kinesis:ap-southeast-1:123456789012:stream/iot-sensor-stream-dev",
        }
        self.records.append(record)
        return record

    def message(self, message: dict | bytes, device_id: str = "press-001") -> dict:
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        data, partition_key = project(telemetry_topic(STACK_SUFFIX, device_id), payload, NOW_MS,
                                      suffix=STACK_SUFFIX)
        return self.raw(data, partition_key)

    def reading(self, device_id: str, timestamp_ms: int, **values: float) -> dict:
        return self.message(build_message(device_id, timestamp_ms, values), device_id)

    def event(self, records: list[dict] | None = None) -> dict:
        return {"Records": list(self.records if records is None else records)}


def sequence(record: dict) -> str:
    return record["kinesis"]["sequenceNumber"]


def steady_batch(devices: int = 3, readings: int = 40) -> BatchBuilder:
    """Normal readings, one a second per device, interleaved as a shard would carry them."""
    batch = BatchBuilder()
    for i in range(readings):
        for d in range(devices):
            batch.reading(f"press-{d:03d}", NOW_MS - 300_000 + i * 1000,
                          temperature=70.0 + (i % 7) * 0.1 + d, vibration=2.0 + (i % 5) * 0.01)
    return batch


def pytest_configure(config) -> None:
    # At exit the interpreter would collect the garbage of a whole run (some 340,000 objects after
    # the processor's tests: about a second, in each xdist worker too) that the process is about to
    # hand back anyway. Frozen, the objects stay out of those last collections; atexit runs this
    # after pytest has finished, its own checks for unraisable exceptions in garbage included.
    atexit.register(gc.freeze)


# With pytest-xdist (`-n 2`, the README's inner loop), the tests that run the program under mocks
# go to one worker as one unit of work: each configuration's run (`program_run`) is then made once,
# not once per worker (some 20 runs of 0.3 to 0.7 s). The other tests are handed out one by one, as xdist's
# `load` (the distribution `-n` uses) does. Not `--dist loadgroup` with `xdist_group` marks:
# pytest-xdist 3.8 groups by renaming the test's node id, which pytest 9.2 no longer reads.
_PROGRAM_RUN_FOLDERS = ("tests/program/", "tests/policies/", "tests/policycheck/", "tests/harness/")


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ProgramRunsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "program runs" if nodeid.startswith(_PROGRAM_RUN_FOLDERS) else nodeid

    return ProgramRunsTogether(config, log)
