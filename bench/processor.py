"""Processor benchmark: the pure path's speed, AWS calls per batch against a naive
baseline, and import time.

    python -m bench.processor [--repeat 5] [--naive-records 10000]

1. Pure path (decode, validate, detect, aggregate) on a 10,000-record batch
   from 100 devices, one core, median of --repeat runs: records per second.
2. The real handler against moto's server on loopback, counting AWS calls per
   batch (botocore event hooks) and wall time; in the same run a naive
   baseline that writes every reading with its own put_item and put_object.
3. Importing the handler's modules in a fresh interpreter where boto3 and
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
import time
from collections import Counter

from handler.aggregation import Window, window_start
from handler.detection import DeviceState
from handler.message_format import build_message, project, telemetry_topic
from handler.processor import BatchReport, Processor
from handler.records import Reading, parse_record
from handler.settings import load
from simulation.series import generate_fleet, iter_readings

DEVICES = 100
RECORDS = 10_000
START_MS = 1_795_081_600_000
# Records as the dev stack's topic rule forwards them.
STACK_SUFFIX = "dev"
WRITE_OPERATIONS = {"PutObject", "BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem"}


def kinesis_batch(records: int = RECORDS, devices: int = DEVICES, first_sequence: int = 10**20) -> list[dict]:
    fleet = generate_fleet(devices, records // devices, seed=3, events_per_device=1)
    batch = []
    for offset, (device_id, timestamp_ms, values) in enumerate(iter_readings(fleet, START_MS)):
        payload = json.dumps(build_message(device_id, timestamp_ms, values)).encode()
        data, partition_key = project(telemetry_topic(STACK_SUFFIX, device_id), payload, timestamp_ms + 150,
                                      suffix=STACK_SUFFIX)
        sequence = str(first_sequence + offset)
        batch.append({"kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": sequence,
                                  "partitionKey": partition_key, "approximateArrivalTimestamp": timestamp_ms / 1000},
                      "eventID": f"shardId-000000000000:{sequence}"})
    return batch


def pure_path(processor: Processor, records: list[dict]) -> int:
    """What the handler does with a batch before any AWS call, on fresh windows and states."""
    parsed = [parse_record(record) for record in records]
    readings = [p for p in parsed if isinstance(p, Reading)]
    unique = Processor._drop_repeats_within_batch(readings, BatchReport())
    windows: dict[tuple[str, int], Window] = {}
    new_ids = set()
    for reading in unique:
        key = (reading.device_id, window_start(reading.timestamp_ms))
        window = windows.get(key)
        if window is None:
            window = windows[key] = Window(start_ms=key[1])
        if window.add(reading.timestamp_ms, reading.values):
            new_ids.add(id(reading))
    states = {r.device_id: DeviceState() for r in unique}
    anomalies, _ = processor._detect(unique, new_ids, states)
    return len(unique)


def bench_pure(repeat: int) -> str:
    environment = {"METRICS_TABLE_NAME": "t", "ARCHIVE_BUCKET_NAME": "b", "METRICS_TTL_DAYS": "30"}
    processor = Processor(load(environment), table=None, archive=None)
    records = kinesis_batch()
    times, cpu_times = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        processed = pure_path(processor, records)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    assert processed == RECORDS
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    # CPU time too: on a shared machine, wall time also counts other processes' turns.
    return (f"pure path: {RECORDS} records, {DEVICES} devices, 4 sensors each: median {median * 1000:.1f} ms "
            f"= {RECORDS / median:,.0f} records/s wall (min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, "
            f"{repeat} runs); CPU time median {cpu_median * 1000:.1f} ms = {RECORDS / cpu_median:,.0f} records/s")


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_) -> None:
        self.calls[model.name] += 1

    def attach(self, client) -> None:
        client.meta.events.register("before-call.*.*", self)


def bench_aws(naive_records: int) -> list[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    from offline.local_aws import provision_stack

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="ap-southeast-1",
                      AWS_ENDPOINT_URL=endpoint)
    pipeline = provision_stack("dev", endpoint)
    os.environ.update(pipeline.function_environment)
    from handler import index

    counter = CallCounter()
    counter.attach(index.PROCESSOR.table.client)
    counter.attach(index.PROCESSOR.archive.client)

    class Context:
        function_name = "bench"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 900_000

    records = kinesis_batch()
    sys.stdout, real_stdout = open(os.devnull, "w"), sys.stdout  # the handler's EMF lines
    try:
        started = time.perf_counter()
        response = index.handler({"Records": records}, Context())
        handler_seconds = time.perf_counter() - started
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
    assert response == {"batchItemFailures": []}, response
    items = boto3.client("dynamodb").scan(TableName=pipeline.table_name, Select="COUNT")["Count"]
    writes = sum(n for name, n in counter.calls.items() if name in WRITE_OPERATIONS)
    expected = f"1 PutObject + ceil({items}/25) = {1 + -(-items // 25)}"

    naive = boto3.client("dynamodb"), boto3.client("s3")
    naive_counter = CallCounter()
    for client in naive:
        naive_counter.attach(client)
    started = time.perf_counter()
    for record in records[:naive_records]:
        message = json.loads(base64.b64decode(record["kinesis"]["data"]))
        naive[0].put_item(TableName=pipeline.table_name, Item={
            "device_id": {"S": "naive-" + message["device_id"]}, "sk": {"S": str(message["timestamp"])},
            "readings": {"S": json.dumps(message["readings"])}})
        naive[1].put_object(Bucket=pipeline.archive_bucket, Key=f"naive/{record['kinesis']['sequenceNumber']}.json",
                            Body=json.dumps(message).encode())
    naive_seconds = (time.perf_counter() - started) * RECORDS / naive_records
    server.stop()
    naive_writes = sum(naive_counter.calls.values()) * RECORDS // naive_records
    return [
        f"handler on moto: {RECORDS} records in {handler_seconds:.2f} s; calls: {dict(sorted(counter.calls.items()))}; "
        f"writes {writes} (target {expected} items written: windows, anomalies, states)",
        f"naive baseline (put_item + put_object per reading, measured on {naive_records} records, scaled to "
        f"{RECORDS}): {naive_writes} writes, {naive_seconds:.1f} s",
        f"ratio: {naive_writes / writes:.0f}x fewer writes, {naive_seconds / handler_seconds:.1f}x less time",
    ]


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--naive-records", type=int, default=RECORDS)
    args = parser.parse_args()
    print(bench_pure(args.repeat))
    for line in bench_imports(args.repeat):
        print(line)
    for line in bench_aws(args.naive_records):
        print(line)


if __name__ == "__main__":
    main()
