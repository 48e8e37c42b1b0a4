"""The local run at scale, and the Kinesis fix it relies on.

    python -m bench.local_throughput --kinesis-only          # moto's shard store, patched vs as shipped
    python -m bench.local_throughput --devices 100 --rate 10 --duration 600

The first measures put_records and get_records rates into one shard of moto's
server as it fills, with and without harness/moto_server.py's fix, in one run:
the median of --repeat fresh servers each (the baseline, moto as shipped,
measured beside the fix).
The second runs the whole local pipeline (local/run.py) and samples, every
10 s, the resident memory of the processes the project runs (the run itself:
rule bridge, pollers and handler; the simulated fleet; the MQTT broker) and,
on its own, moto's server, whose store grows with the data kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import boto3

from local.processes import free_port, start_module, stop
from local.run import LocalRun, _arguments, summarize_run
from harness.stack_config import PROJECT_DIR

OUTPUT = PROJECT_DIR / ".local-run" / "bench"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def kinesis_rates(patched: bool, records: int, chunk: int = 500) -> list[tuple[int, float, float]]:
    """(records already in the shard, put records/s, get records/s) as one shard fills."""
    port = free_port()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    server = start_module("harness.moto_server", port, OUTPUT / "moto-bench.log", *([] if patched else ["--unpatched"]))
    try:
        kinesis = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}", region_name="ap-southeast-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")
        kinesis.create_stream(StreamName="bench", ShardCount=1)
        shard = kinesis.list_shards(StreamName="bench")["Shards"][0]["ShardId"]
        payload = [{"Data": b'{"device_id":"press-001","readings":{"temperature":70.1}}', "PartitionKey": "p"}] * chunk
        samples, stored = [], 0
        checkpoints = {int(records * f) for f in (0.0, 0.25, 0.5, 0.75)}
        while stored < records:
            started = time.perf_counter()
            kinesis.put_records(StreamName="bench", Records=payload)
            put_rate = chunk / (time.perf_counter() - started)
            if any(stored <= c < stored + chunk for c in checkpoints):
                iterator = kinesis.get_shard_iterator(StreamName="bench", ShardId=shard,
                                                      ShardIteratorType="AT_SEQUENCE_NUMBER",
                                                      StartingSequenceNumber=str(max(1, stored)))["ShardIterator"]
                started = time.perf_counter()
                got = len(kinesis.get_records(ShardIterator=iterator, Limit=chunk)["Records"])
                samples.append((stored, put_rate, got / (time.perf_counter() - started)))
            stored += chunk
        return samples
    finally:
        stop(server)


def bench_kinesis(records: int, repeat: int) -> None:
    for patched in (False, True):
        label = "patched (harness/moto_server.py)" if patched else "moto as shipped"
        runs = [kinesis_rates(patched, records) for _ in range(repeat)]
        for checkpoint in zip(*runs):
            stored = checkpoint[0][0]
            put_rate = statistics.median(sample[1] for sample in checkpoint)
            get_rate = statistics.median(sample[2] for sample in checkpoint)
            print(f"{label:32s} shard holds {stored:>7} records: put {put_rate:>9,.0f}/s  get {get_rate:>9,.0f}/s"
                  f"  (median of {repeat})")


def bench_run(argv: list[str]) -> None:
    args = _arguments(argv + ["--output", str(OUTPUT), "--no-plot"])
    run = LocalRun(args)
    samples: list[dict] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(10):
            children = {name: child.pid for name, child in zip(("broker", "moto", "fleet"), run.children)}
            samples.append({"t": round(time.monotonic() - run.started, 1),
                            "run": rss_mb(os.getpid()), "fleet": rss_mb(children.get("fleet", -1)),
                            "broker": rss_mb(children["broker"]), "moto_store": rss_mb(children["moto"]),
                            "processed": sum(p.records_done for p in run.pollers)})

    try:
        run.start()
        run.started = time.monotonic()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        manifest = run.publish()
        run.drain(manifest)
        stop_sampling.set()
        summary = summarize_run(run, manifest)
    finally:
        run.stop()
    (OUTPUT / "memory.json").write_text(json.dumps(samples))
    (OUTPUT / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({key: summary[key] for key in (
        "published", "readings_stored", "every_message_accounted_for", "published_per_s", "throughput_readings_per_s",
        "backlog_when_publishing_ended", "drain_s", "latency_ms", "publishing_s")}))
    steady = [s for s in samples if s["t"] >= 60]
    for process in ("run", "fleet", "broker", "moto_store"):
        values = [s[process] for s in steady if s[process] is not None]
        if values:
            print(f"RSS {process:10s}: at 1 min {values[0]:7.1f} MB, at end {values[-1]:7.1f} MB, "
                  f"max {max(values):7.1f} MB, median {statistics.median(values):7.1f} MB ({len(values)} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinesis-only", action="store_true")
    parser.add_argument("--kinesis-records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5, help="fresh servers per variant (--kinesis-only)")
    known, rest = parser.parse_known_args()
    if known.kinesis_only:
        bench_kinesis(known.kinesis_records, known.repeat)
    else:
        bench_run(rest)


if __name__ == "__main__":
    main()
