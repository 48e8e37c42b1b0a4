"""Run the whole pipeline on this machine, with no AWS account and no services.

    ./run-local.sh [--devices 20] [--rate 5] [--duration 60] [--stack dev] [--output .local-run]

Starts a real MQTT broker and moto's server (Kinesis, DynamoDB, S3, KMS) as
child processes, creates the stream, table, bucket and key from what the
Pulumi program declares for the stack, bridges the broker into Kinesis exactly
as the topic rule would, polls the stream as the event source mapping does and
invokes the real processor. A simulated fleet publishes over MQTT with labeled
trouble. At the end: a summary (also summary.json), a plot (readings.png) and
a snapshot of the metrics table (table.jsonl) for `python -m local.inspect`.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3

from local.bridge import RuleBridge
from local.poller import LatencyHistogram, ShardPoller
from local.processes import free_port, start_module, stop
from offline.local_aws import provision
from offline.mocks import run_program
from offline.stack_config import PROJECT_DIR, stack_names
from simulation.series import SENSOR_PROFILES, InjectedEvent, score


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./run-local.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20, help="simulated devices (default 20)")
    parser.add_argument("--rate", type=float, default=5.0, help="messages per second per device (default 5)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing (default 60)")
    parser.add_argument("--sensors", default=",".join(SENSOR_PROFILES),
                        help=f"comma-separated sensor types (default {','.join(SENSOR_PROFILES)})")
    parser.add_argument("--malformed", type=float, default=0.01, help="fraction of malformed messages (default 0.01)")
    parser.add_argument("--duplicates", type=float, default=0.01, help="fraction published twice (default 0.01)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stack", default="dev", help=f"stack whose settings to use ({', '.join(stack_names())})")
    parser.add_argument("--output", type=Path, default=PROJECT_DIR / ".local-run", help="where results go")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    args = parser.parse_args(argv)
    problems = []
    if not 1 <= args.devices <= 1000:
        problems.append(f"--devices {args.devices}: use 1 to 1000")
    if not 0 < args.rate <= 100:
        problems.append(f"--rate {args.rate}: use more than 0 and at most 100 messages per second per device")
    if args.duration <= 0:
        problems.append(f"--duration {args.duration}: use a positive number of seconds")
    unknown = [s for s in args.sensors.split(",") if s and s not in SENSOR_PROFILES]
    if unknown:
        problems.append(f"--sensors: unknown {', '.join(unknown)}; known: {', '.join(SENSOR_PROFILES)}")
    for name in ("malformed", "duplicates"):
        if not 0 <= getattr(args, name) < 0.5:
            problems.append(f"--{name} {getattr(args, name)}: use a fraction from 0 to 0.5")
    if args.stack not in stack_names():
        problems.append(f"--stack {args.stack}: no Pulumi.{args.stack}.yaml; stacks: {', '.join(stack_names())}")
    if problems:
        parser.error("; ".join(problems))
    return args


class LocalRun:
    """The running pieces, and what they counted."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.output: Path = args.output
        self.output.mkdir(parents=True, exist_ok=True)
        for stale in ("rule-errors.jsonl", "fleet.json"):
            (self.output / stale).unlink(missing_ok=True)
        self.children: list[subprocess.Popen] = []
        # The handler prints its EMF metric lines on stdout, as in Lambda (where they become
        # metrics): keep them in a file, out of the display.
        self.console = sys.stdout
        self.metrics_sink = open(self.output / "processor-metrics.jsonl", "w", encoding="utf-8")
        sys.stdout = self.metrics_sink

    def start(self) -> None:
        self.broker_port = free_port()
        self.children.append(start_module("local.broker", self.broker_port, self.output / "broker.log"))
        moto_port = free_port()
        self.children.append(start_module("local.moto_server", moto_port, self.output / "moto.log"))
        endpoint = f"http://127.0.0.1:{moto_port}"
        os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_ENDPOINT_URL=endpoint)
        self.pipeline = provision(run_program(self.args.stack), endpoint)
        os.environ.update(self.pipeline.function_environment, AWS_DEFAULT_REGION=self.pipeline.region)
        self.kinesis = boto3.client("kinesis", region_name=self.pipeline.region)
        # The real processor, imported as Lambda would once its environment is set.
        self.handler = importlib.import_module("handler.index")
        self.bridge = RuleBridge(self.broker_port, self.kinesis, self.pipeline.stream_name,
                                 self.output / "rule-errors.jsonl")
        self.bridge.start()
        self.latencies = LatencyHistogram()
        shards = self.kinesis.list_shards(StreamName=self.pipeline.stream_name)["Shards"]
        self.pollers = [
            ShardPoller(self.kinesis, self.pipeline.stream_name, self.pipeline.stream_arn, shard["ShardId"],
                        self.pipeline.mapping, self._invoke, self.pipeline.function_name,
                        self.pipeline.function_timeout_seconds, self.output / "failed", self.latencies)
            for shard in shards
        ]
        for poller in self.pollers:
            poller.start()

    def _invoke(self, event: dict, context) -> dict:
        return self.handler.handler(event, context)

    def publish(self) -> dict:
        args = self.args
        fleet = subprocess.Popen([
            sys.executable, "-m", "local.fleet", "--port", str(self.broker_port), "--devices", str(args.devices),
            "--rate", str(args.rate), "--duration", str(args.duration), "--sensors", args.sensors,
            "--seed", str(args.seed), "--malformed", str(args.malformed), "--duplicates", str(args.duplicates),
            "--manifest", str(self.output / "fleet.json"),
        ], stderr=subprocess.DEVNULL)
        self.children.append(fleet)
        self.started = time.monotonic()
        while fleet.poll() is None:
            self._progress("publishing")
            time.sleep(1)
        if fleet.returncode != 0:
            raise RuntimeError(f"the simulated fleet failed with exit code {fleet.returncode}")
        return json.loads((self.output / "fleet.json").read_text())

    def drain(self, timeout_s: float = 120.0) -> None:
        """Wait until everything published has gone through the bridge and the processor."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._progress("draining")
            settled = self.bridge.received == self._bridge_handled()
            if settled and self._processed() >= self.bridge.forwarded:
                break
            time.sleep(0.5)
        self.finished = time.monotonic()
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(timeout=30)
        self.bridge.stop()
        sys.stderr.write("\n")

    def _bridge_handled(self) -> int:
        return self.bridge.forwarded + self.bridge.rejected

    def _processed(self) -> int:
        return sum(p.records_done for p in self.pollers)

    def _progress(self, phase: str) -> None:
        elapsed = time.monotonic() - self.started
        processed = self._processed()
        sys.stderr.write(
            f"\r{phase:10s} {elapsed:6.0f} s | received {self.bridge.received:>8} | rule errors "
            f"{self.bridge.rejected:>5} | in stream {self.bridge.forwarded:>8} | processed {processed:>8} "
            f"| {processed / elapsed if elapsed else 0:7.0f}/s  "
        )
        sys.stderr.flush()

    def stop(self) -> None:
        for child in reversed(self.children):
            stop(child)
        sys.stdout = self.console
        self.metrics_sink.close()


def _table_items(pipeline) -> list[dict]:
    dynamodb = boto3.client("dynamodb", region_name=pipeline.region)
    items, kwargs = [], {"TableName": pipeline.table_name}
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _quarantined(pipeline) -> list[dict]:
    s3 = boto3.client("s3", region_name=pipeline.region)
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=pipeline.archive_bucket, Prefix="quarantine/"):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=pipeline.archive_bucket, Key=entry["Key"])["Body"].read()
            lines.extend(json.loads(line) for line in gzip.decompress(body).decode().splitlines())
    return lines


def summarize(run: LocalRun, manifest: dict) -> dict:
    pipeline = run.pipeline
    items = _table_items(pipeline)
    windows = [i for i in items if i.get("item_type", {}).get("S") == "metrics"]
    anomalies = [i for i in items if i.get("item_type", {}).get("S") == "anomaly"]
    quarantined = _quarantined(pipeline)
    stored = sum(int(w["reading_count"]["N"]) for w in windows)
    by_kind: dict[str, int] = {}
    for anomaly in anomalies:
        by_kind[anomaly["kind"]["S"]] = by_kind.get(anomaly["kind"]["S"], 0) + 1
    period, start = manifest["period_ms"], manifest["start_ms"]
    detections = [(a["device_id"]["S"], a["sensor"]["S"], (int(a["timestamp_ms"]["N"]) - start) // period,
                   a["kind"]["S"]) for a in anomalies]
    events = [InjectedEvent(e["device_id"], e["sensor"], e["kind"], e["start"], e["end"]) for e in manifest["events"]]
    quality = {kind: {"injected": s.injected, "detected": s.detected_events, "detections": s.detections,
                      "precision": round(s.precision, 3), "recall": round(s.recall, 3)}
               for kind, s in score(events, detections).items()}
    failed = sum(p.records_to_failure_destination for p in run.pollers)
    duplicates_dropped = run.bridge.forwarded - stored - len(quarantined) - failed
    elapsed = run.finished - run.started
    # Throughput over the time readings were flowing: first publish to last batch stored.
    flowing = max((p.last_done_at for p in run.pollers), default=run.finished) - run.started
    accounted = stored + len(quarantined) + run.bridge.rejected + duplicates_dropped + failed
    with open(run.output / "table.jsonl", "w", encoding="utf-8") as snapshot:
        for item in items:
            snapshot.write(json.dumps(item) + "\n")
    return {
        "published": manifest["published"],
        "published_readings": manifest["readings"],
        "published_duplicates": manifest["duplicates"],
        "published_malformed": manifest["malformed"],
        "publish_failures": manifest["publish_failures"],
        "rule_errors": run.bridge.rejected,
        "records_into_stream": run.bridge.forwarded,
        "readings_stored": stored,
        "duplicates_dropped": duplicates_dropped,
        "quarantined": len(quarantined),
        "quarantine_reasons": {r: sum(1 for q in quarantined if q["reason"] == r) for r in
                               sorted({q["reason"] for q in quarantined})},
        "sent_to_failure_destination": failed,
        "every_message_accounted_for": accounted == manifest["published"] and stored == manifest["readings"],
        "anomalies_by_kind": dict(sorted(by_kind.items())),
        "detection": quality,
        "throughput_readings_per_s": round(stored / flowing, 1) if flowing > 0 else None,
        "latency_ms": {f"p{int(q * 100)}": run.latencies.percentile(q) for q in (0.5, 0.95, 0.99)},
        "invocations": sum(p.invocations for p in run.pollers),
        "partial_batch_retries": sum(p.partial_retries for p in run.pollers),
        "elapsed_s": round(elapsed, 1),
    }


def print_summary(summary: dict, output: Path) -> None:
    print(f"""
Published {summary['published']} messages: {summary['published_readings']} readings, \
{summary['published_duplicates']} duplicates, {sum(summary['published_malformed'].values())} malformed
  rule errors (kept by the rule's error action): {summary['rule_errors']}
  records into Kinesis:                          {summary['records_into_stream']}
  readings stored (once each):                   {summary['readings_stored']}
  duplicates recognised and dropped:             {summary['duplicates_dropped']}
  quarantined:                                   {summary['quarantined']} {summary['quarantine_reasons']}
  sent to the on-failure destination:            {summary['sent_to_failure_destination']}
  every message accounted for:                   {'yes' if summary['every_message_accounted_for'] else 'NO'}
Anomalies by kind: {summary['anomalies_by_kind']}
Detection against the injected labels:""")
    for kind, quality in summary["detection"].items():
        print(f"  {kind:6s} injected {quality['injected']:4d}  detected {quality['detected']:4d}  "
              f"precision {quality['precision']:.3f}  recall {quality['recall']:.3f}")
    latency = summary["latency_ms"]
    print(f"Throughput {summary['throughput_readings_per_s']} readings/s over {summary['elapsed_s']} s; "
          f"end-to-end latency p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms")
    print(f"Results in {output}: summary.json, readings.png, table.jsonl (inspect with `python -m local.inspect`)")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    run = LocalRun(args)
    try:
        run.start()
        manifest = run.publish()
        run.drain()
        summary = summarize(run, manifest)
    finally:
        run.stop()
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_plot:
        from local.plot import plot_devices

        plot_devices(manifest, args.output / "table.jsonl", args.output / "readings.png", seed=args.seed,
                     sensors=[s for s in args.sensors.split(",") if s])
    print_summary(summary, args.output)
    return 0 if summary["every_message_accounted_for"] else 1


if __name__ == "__main__":
    sys.exit(main())
