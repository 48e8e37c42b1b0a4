"""Processor benchmark: the pure path's speed, AWS calls and write units per batch against
a naive baseline, the scale scenarios, and import time.

    python -m bench.processor [--repeat 5] [--naive-records 2000] [--skip-scenarios | --pure-only]

1. Pure path (decode, validate, plan: windows, detection, episodes, items) on a
   10,000-record batch from 100 devices with 4 sensors, and with 8 sensors,
   one core, median of --repeat runs: readings per second; alternating with the
   same path without the detector (NoDetector), for the detector's share.
2. The real handler against moto's server on loopback: calls per batch (counted
   by botocore hooks, and as the processor reports them), write units, items,
   largest item, wall time; in the same run a naive baseline that writes every
   reading with its own put_item and put_object.
3. Scenarios, each reporting calls, items, largest item size and readings lost
   (table readings against readings sent, must be 0): one device at 1,000
   readings/s beside 100 devices at 1/s for 2 minutes of device time; 5,000
   devices in one batch; two invocations on one shard at once, sharing devices
   and minutes.
4. Importing the handler's modules in a fresh interpreter where boto3 and
   botocore cannot be imported at all, median of --repeat; creating the two
   clients is timed separately.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter

from handler.core import Planner, sort_batch
from handler.detection import Detector, DeviceModel, Episode
from handler.message_format import build_message, project, telemetry_topic
from handler.records import parse_record
from handler.settings import load
from simulation.series import generate_fleet, iter_readings

DEVICES = 100
RECORDS = 10_000
START_MS = 1_795_081_600_000
# Records as the dev stack's topic rule forwards them.
STACK_SUFFIX = "dev"
SHARD = "shardId-000000000000"
WRITE_OPERATIONS = {"PutObject", "BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem"}
EXTRA_SENSORS = ("current", "voltage", "flow_rate", "accel1_rms")


class Records:
    """Kinesis records as the topic rule puts them, numbered in shard order."""

    def __init__(self, first_sequence: int = 10**20) -> None:
        self.next_sequence = first_sequence

    def record(self, device_id: str, timestamp_ms: int, values: dict[str, float]) -> dict:
        payload = json.dumps(build_message(device_id, timestamp_ms, values)).encode()
        data, partition_key = project(telemetry_topic(STACK_SUFFIX, device_id), payload, timestamp_ms + 150,
                                      suffix=STACK_SUFFIX)
        sequence = str(self.next_sequence)
        self.next_sequence += 1
        return {"kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": sequence,
                            "partitionKey": partition_key, "approximateArrivalTimestamp": (timestamp_ms + 150) / 1000},
                "eventID": f"{SHARD}:{sequence}"}


def kinesis_batch(records: int = RECORDS, devices: int = DEVICES, extra_sensors: int = 0) -> list[dict]:
    fleet = generate_fleet(devices, records // devices, seed=3, events_per_device=1)
    numbering = Records()
    batch = []
    for device_id, timestamp_ms, values in iter_readings(fleet, START_MS):
        values = dict(values)
        for index, name in enumerate(EXTRA_SENSORS[:extra_sensors]):
            values[name] = round(values["temperature"] * (index + 1.5) + (timestamp_ms % 997) / 100, 3)
        batch.append(numbering.record(device_id, timestamp_ms, values))
    return batch


class NoDetector(Detector):
    """Observes nothing and finds nothing: the pure path without the detector's own time (this benchmark only)."""

    def observe(self, model: DeviceModel, timestamp_ms: int, values: dict[str, float]) -> list[Episode]:
        return []

    def outside_limits(self, timestamp_ms: int, values: dict[str, float]) -> list[Episode]:
        return []


def _planner(detector: type[Detector] = Detector) -> Planner:
    settings = load({"METRICS_TABLE_NAME": "t", "ARCHIVE_BUCKET_NAME": "b", "METRICS_TTL_DAYS": "30"})
    return Planner(detector(dict(settings.sensor_limits), settings.detector), settings.ttl_days)


def pure_path(planner: Planner, records: list[dict]) -> int:
    """What the handler does with a batch between its read and its writes, on an empty table."""
    plans = planner.plan(sort_batch([parse_record(record) for record in records]), {})
    return sum(len(plan.applied) for plan in plans)


def bench_pure(repeat: int, extra_sensors: int) -> str:
    """The pure path, and in alternation the same without the detector: readings/s, and the detector's share."""
    planners = {"full": _planner(), "no detector": _planner(NoDetector)}
    records = kinesis_batch(extra_sensors=extra_sensors)
    times: dict[str, list[float]] = {name: [] for name in planners}
    cpu_times: dict[str, list[float]] = {name: [] for name in planners}
    for _ in range(repeat):
        for name, planner in planners.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            processed = pure_path(planner, records)
            times[name].append(time.perf_counter() - started)
            cpu_times[name].append(time.process_time() - cpu_started)
            assert processed == RECORDS, processed
    median = statistics.median(times["full"])
    # CPU time too: on a shared machine, wall time also counts other processes' turns.
    cpu = {name: statistics.median(values) for name, values in cpu_times.items()}
    return (f"pure path, {4 + extra_sensors} sensors: {RECORDS} readings, {DEVICES} devices: median "
            f"{median * 1000:.1f} ms = {RECORDS / median:,.0f} readings/s wall ({repeat} runs, min "
            f"{min(times['full']) * 1000:.1f} ms); CPU median {cpu['full'] * 1000:.1f} ms = "
            f"{RECORDS / cpu['full']:,.0f}/s; without the detector (NoDetector, alternating) CPU median "
            f"{cpu['no detector'] * 1000:.1f} ms = {RECORDS / cpu['no detector']:,.0f}/s: the detector's share "
            f"{1 - cpu['no detector'] / cpu['full']:.0%}")


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_) -> None:
        self.calls[model.name] += 1

    def writes(self) -> int:
        return sum(n for name, n in self.calls.items() if name in WRITE_OPERATIONS)


class Context:
    function_name = "bench"

    def __init__(self, seconds: float = 900) -> None:
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends - time.monotonic()) * 1000))


class LocalStack:
    """moto's server with the dev stack's table and bucket, and the real handler pointed at it."""

    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        from harness.moto_server import patch_moto
        from harness.provision import provision_stack

        patch_moto()  # as the local run and the tests serve moto
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("handler").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="ap-southeast-1", AWS_ENDPOINT_URL=endpoint)
        self.pipeline = provision_stack("dev", endpoint)
        os.environ.update(self.pipeline.function_environment)
        from handler import index, metrics

        metrics.set_sink(lambda text: None)  # the handler's EMF lines are not the benchmark's output
        self.index = index
        # The benchmark's own clients (scans, cleaning) are made first: they do not count.
        self.dynamodb = boto3.client("dynamodb")
        self.s3 = boto3.client("s3")
        self.counter = CallCounter()
        # Every client the handler creates from here on counts its calls.
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self.counter)

    def clear(self) -> None:
        table = self.pipeline.table_name
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                self.dynamodb.delete_item(TableName=table, Key={"device_id": item["device_id"], "sk": item["sk"]})
        bucket = self.pipeline.archive_bucket
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                self.s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        self.counter.calls.clear()

    def deliver(self, records: list[dict]):
        """The processor on one batch, as handler.index runs it; its report (calls, write units) with it."""
        from handler.storage import Deadline

        report = self.index.PROCESSOR.process(records, Deadline(Context().get_remaining_time_in_millis))
        return report

    def stored_readings(self) -> tuple[int, int]:
        """(readings in the table's windows, items in the table)."""
        readings = items = 0
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.pipeline.table_name):
            for item in page["Items"]:
                items += 1
                if item["sk"]["S"].endswith("#metrics"):
                    readings += int(item["reading_count"]["N"])
        return readings, items

    def stop(self) -> None:
        self.server.stop()


def bench_aws(stack: LocalStack, naive_records: int) -> list[str]:
    stack.clear()
    records = kinesis_batch()
    started = time.perf_counter()
    report = stack.deliver(records)
    handler_seconds = time.perf_counter() - started
    assert report.failed_from is None, report.failure
    readings, items = stack.stored_readings()
    writes = stack.counter.writes()
    hooks = dict(sorted(stack.counter.calls.items()))
    budget = 1 + -(-items // 25)

    naive_counter = CallCounter()
    import boto3

    naive = boto3.client("dynamodb"), boto3.client("s3")
    for client in naive:
        client.meta.events.register("before-call.*.*", naive_counter)
    started = time.perf_counter()
    for record in records[:naive_records]:
        message = json.loads(base64.b64decode(record["kinesis"]["data"]))
        naive[0].put_item(TableName=stack.pipeline.table_name, Item={
            "device_id": {"S": "naive-" + message["device_id"]}, "sk": {"S": str(message["timestamp"])},
            "readings": {"S": json.dumps(message["readings"])}})
        naive[1].put_object(Bucket=stack.pipeline.archive_bucket, Key=f"naive/{record['kinesis']['sequenceNumber']}.json",
                            Body=json.dumps(message).encode())
    naive_seconds = (time.perf_counter() - started) * RECORDS / naive_records
    naive_writes = naive_counter.writes() * RECORDS // naive_records
    return [
        f"handler on moto: {RECORDS} readings, {DEVICES} devices in {handler_seconds:.2f} s; calls (hooks) {hooks}; "
        f"as reported {dict(sorted(report.calls.counts.items()))}; writes {writes}, budget 1 PutObject + "
        f"ceil({items} items/25) = {budget}; write units {report.calls.write_units}; largest item "
        f"{report.calls.largest_item_bytes:,} bytes; readings lost {RECORDS - readings}",
        f"naive baseline (put_item + put_object per reading, measured on {naive_records} readings, scaled to "
        f"{RECORDS}): {naive_writes} writes, {naive_seconds:.1f} s",
        f"ratio: {naive_writes / writes:.0f}x fewer writes, {naive_seconds / handler_seconds:.1f}x less time",
    ]


def _scenario_line(name: str, stack: LocalStack, sent: int, batches: int, reports: list, seconds: float) -> str:
    readings, items = stack.stored_readings()
    calls = Counter()
    for report in reports:
        calls.update(report.calls.counts)
    write_units = sum(report.calls.write_units for report in reports)
    largest = max(report.calls.largest_item_bytes for report in reports)
    return (f"{name}: {sent:,} readings in {batches} batches, {seconds:.1f} s; calls {dict(sorted(calls.items()))}; "
            f"write units {write_units:,}; items {items:,}; largest item {largest:,} bytes; "
            f"readings lost {sent - readings}")


def _deliver_all(stack: LocalStack, records: list[dict], batch_size: int) -> list:
    reports = []
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        for _ in range(10):  # the mapping's retries from the reported record (the batch's first)
            report = stack.deliver(batch)
            reports.append(report)
            if report.failed_from is None:
                break
    return reports


def scenario_fast_device(stack: LocalStack, seconds: int = 120, batch_size: int = 500) -> str:
    """One device at 1,000 readings/s (1 ms apart) among 100 devices at 1 reading/s."""
    stack.clear()
    numbering = Records()
    records = []
    for second in range(seconds):
        base = START_MS - seconds * 1000 + second * 1000
        for d in range(100):
            records.append(numbering.record(f"press-{d:03d}", base + d, {"temperature": 70.0 + (second % 7) * 0.1}))
        for ms in range(1000):
            records.append(numbering.record("spindle-fast", base + ms, {"vibration": 4.0 + (ms % 13) * 0.01}))
    started = time.perf_counter()
    reports = _deliver_all(stack, records, batch_size)
    return _scenario_line(f"fast device: 1 at 1,000/s + 100 at 1/s, {seconds} s of device time, batches of "
                          f"{batch_size}", stack, len(records), -(-len(records) // batch_size), reports,
                          time.perf_counter() - started)


def scenario_many_devices(stack: LocalStack, devices: int = 5_000) -> str:
    stack.clear()
    numbering = Records()
    records = [numbering.record(f"dev-{d:05d}", START_MS - 60_000 + d % 1000, {"temperature": 70.0, "vibration": 4.0})
               for d in range(devices)]
    started = time.perf_counter()
    reports = _deliver_all(stack, records, devices)
    return _scenario_line(f"{devices:,} devices in one batch", stack, devices, 1, reports,
                          time.perf_counter() - started)


def scenario_concurrent(stack: LocalStack, devices: int = 20, readings: int = 300) -> str:
    """Two invocations on one shard at once (a replay racing the live mapping), sharing devices and minutes."""
    stack.clear()
    numbering = Records()
    records = [numbering.record(f"press-{d:03d}", START_MS - readings * 1000 + i * 1000, {"temperature": 70.0 + i % 5})
               for i in range(readings) for d in range(devices)]
    # Every other reading of every device to each: both write the same windows and states.
    halves = [[r for n, r in enumerate(records) if n // devices % 2 == side] for side in (0, 1)]
    reports: list = []
    lock = threading.Lock()

    def run(part: list[dict]) -> None:
        for _ in range(10):
            report = stack.deliver(part)
            with lock:
                reports.append(report)
            if report.failed_from is None:
                return

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _scenario_line(f"two concurrent invocations on one shard, {devices} devices x {readings} readings",
                          stack, len(records), 2, reports, time.perf_counter() - started)


_IMPORT_PROBE = """
import sys, time
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('boto3', 'botocore'):
            raise ImportError(f'{name} is blocked in this measurement')
sys.meta_path.insert(0, Block())
started = time.perf_counter()
import handler.index
print(time.perf_counter() - started)
"""


def bench_imports(repeat: int) -> list[str]:
    environment = dict(os.environ, METRICS_TABLE_NAME="t", ARCHIVE_BUCKET_NAME="b", METRICS_TTL_DAYS="30")
    times = []
    for _ in range(repeat):
        output = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], env=environment, check=True,
                                capture_output=True, text=True).stdout
        times.append(float(output.strip()))
    started = time.perf_counter()
    import boto3

    boto3.client("dynamodb", region_name="ap-southeast-1")
    boto3.client("s3", region_name="ap-southeast-1")
    clients = time.perf_counter() - started
    return [f"import handler.index without boto3/botocore: median {statistics.median(times) * 1000:.1f} ms "
            f"({repeat} fresh interpreters)",
            f"creating the DynamoDB and S3 clients (once per container, on first use): {clients * 1000:.0f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processor")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--naive-records", type=int, default=2_000)
    parser.add_argument("--skip-scenarios", action="store_true", help="only the pure path, imports and one batch")
    parser.add_argument("--pure-only", action="store_true", help="only the pure path (no moto server)")
    args = parser.parse_args()
    print(bench_pure(args.repeat, extra_sensors=0), flush=True)
    print(bench_pure(args.repeat, extra_sensors=4), flush=True)
    if args.pure_only:
        return
    for line in bench_imports(args.repeat):
        print(line, flush=True)
    stack = LocalStack()
    try:
        for line in bench_aws(stack, args.naive_records):
            print(line, flush=True)
        if not args.skip_scenarios:
            for scenario in (scenario_fast_device, scenario_many_devices, scenario_concurrent):
                print(scenario(stack), flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
