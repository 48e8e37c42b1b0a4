"""Run the whole pipeline on this machine, with no AWS account and no services.

    ./run-local.sh [--devices 20] [--rate 10] [--duration 60] [--stack dev] [--output .local-run] [--no-plot]

Starts a real MQTT broker and moto's server (Kinesis, DynamoDB, S3, KMS) as
child processes, creates the stream, table, bucket and key from what the
Pulumi program declares for the stack, bridges the broker into Kinesis exactly
as the topic rule would, polls the stream as the event source mapping does and
invokes the real processor. A simulated fleet publishes over MQTT with labeled
trouble. Each run writes to a fresh folder, <output>/runs/<UTC time>/, and
<output>/latest points at it (local/runs.py). At the end: a summary (also
summary.json), a plot (readings.png), a snapshot of the metrics table
(table.jsonl) for `python -m local.inspect` and the archive's objects
(archive/) for `python -m local.query`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3

from handler.detector_settings import validate as validate_detector_settings
from handler.layout import ENV_ANOMALY_SETTINGS, QUARANTINE_PREFIX, RAW_PREFIX
from local import summary as summaries
from local.archive import ARCHIVE_DIR, export_archive
from local.bridge import RuleBridge
from local.failure_destination import ArchiveFailureDestination
from local.fleet import MAX_DEVICES
from local.metric_sink import MetricLineSink
from local.poller import LatencyHistogram, ShardPoller
from local.processes import free_port, start_module, stop
from local.runs import LATEST, default_output, new_run_folder
from harness.provision import FUNCTION, MAPPING, provision
from harness.mocks import run_program
from harness.stack_config import project_name, run_command, stack_names
from simulation.series import SENSOR_PROFILES

# The run waits for the last records as long as something still moves; this long with
# nothing moving means something is stuck, and the summary says what is missing.
STALL_TIMEOUT_S = 60.0
METRIC_LINES_FILE = "processor-metrics.jsonl"
LOG_FILE = "run.log"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./run-local.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20, help=f"simulated devices, up to {MAX_DEVICES} (default 20)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="messages per second per device (default 10); devices x rate = readings/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing (default 60)")
    parser.add_argument("--sensors", default=",".join(SENSOR_PROFILES),
                        help=f"comma-separated sensor types (default {','.join(SENSOR_PROFILES)})")
    parser.add_argument("--malformed", type=float, default=0.01, help="fraction of malformed messages (default 0.01)")
    parser.add_argument("--duplicates", type=float, default=0.01, help="fraction published twice (default 0.01)")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same readings and trouble (default 7)")
    parser.add_argument("--stack", default="dev", help=f"stack whose settings to use ({', '.join(stack_names())})")
    parser.add_argument("--output", type=Path, default=default_output(),
                        help="results go to a fresh <output>/runs/<UTC time>/ folder, and <output>/latest "
                             "points at it (default .local-run/)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    args = parser.parse_args(argv)
    problems = []
    if not 1 <= args.devices <= MAX_DEVICES:
        problems.append(f"--devices {args.devices}: use 1 to {MAX_DEVICES} (the simulated fleet is one process, "
                        "and paho's per-client network threads cannot watch more connections); for more load, "
                        "raise --rate")
    if not 0 < args.rate <= 100:
        problems.append(f"--rate {args.rate}: use more than 0 and at most 100 messages per second per device")
    if args.duration <= 0:
        problems.append(f"--duration {args.duration}: use a positive number of seconds")
    sensors = [s.strip() for s in args.sensors.split(",") if s.strip()]
    unknown = [s for s in sensors if s not in SENSOR_PROFILES]
    if unknown or not sensors:
        problems.append(f"--sensors {args.sensors!r}: use one or more of {', '.join(SENSOR_PROFILES)}, "
                        "comma-separated")
    for name in ("malformed", "duplicates"):
        if not 0 <= getattr(args, name) < 0.5:
            problems.append(f"--{name} {getattr(args, name)}: use a fraction from 0 to 0.5")
    if args.stack not in stack_names():
        problems.append(f"--stack {args.stack}: no Pulumi.{args.stack}.yaml; stacks: {', '.join(stack_names())}")
    if problems:
        parser.error("; ".join(problems))
    args.sensor_list = sensors
    return args


class LocalRun:
    """The running pieces, and what they counted."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # A fresh folder per run: nothing an earlier run left can be mistaken for this run's results.
        self.output: Path = new_run_folder(args.output)
        self.children: list[subprocess.Popen] = []
        self.started = time.monotonic()
        # The handler prints its EMF metric lines on stdout in Lambda (where they become metrics);
        # here several pollers invoke it at once, so its lines go to one thread-safe file writer,
        # out of the display, and are counted at the end.
        self.metrics_sink = MetricLineSink(self.output / METRIC_LINES_FILE)
        self.metrics_sink.install()
        # Warnings and errors of the processor, pollers and bridge (tracebacks included) go to a
        # file: on the terminal they would bury the progress line; the summary points to it.
        self.log_handler = logging.FileHandler(self.output / LOG_FILE, mode="w", encoding="utf-8")
        self.log_handler.setLevel(logging.WARNING)
        self.log_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(self.log_handler)

    def start(self, program) -> None:
        self.broker_port = free_port()
        self.children.append(start_module("local.broker", self.broker_port, self.output / "broker.log"))
        moto_port = free_port()
        self.children.append(start_module("harness.moto_server", moto_port, self.output / "moto.log"))
        endpoint = f"http://127.0.0.1:{moto_port}"
        os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_ENDPOINT_URL=endpoint)
        self.pipeline = provision(program, endpoint)
        factor = int(program.one(MAPPING).inputs.get("parallelizationFactor", 1))
        if factor > 1:
            sys.stderr.write(f"note: the {self.args.stack} stack's mapping runs {factor} batches per shard at once; "
                             "the local poller runs one (the same order per device, less concurrency)\n")
        os.environ.update(self.pipeline.function_environment, AWS_DEFAULT_REGION=self.pipeline.region)
        self.kinesis = boto3.client("kinesis", region_name=self.pipeline.region)
        self.s3 = boto3.client("s3", region_name=self.pipeline.region)
        # The real processor, imported as Lambda would once its environment is set.
        self.handler = importlib.import_module("handler.index")
        # The stack's topic namespace: the bridge selects it as the stack's rule does.
        self.suffix = program.config[f"{project_name()}:environmentSuffix"]
        self.bridge = RuleBridge(self.broker_port, self.kinesis, self.pipeline.stream_name,
                                 self.output / "rule-errors.jsonl", suffix=self.suffix)
        self.bridge.start()
        self.failure_destination = ArchiveFailureDestination(
            self.s3, self.pipeline.archive_bucket, program.one(MAPPING).outputs["uuid"],
            program.one(FUNCTION).outputs["arn"], self.pipeline.stream_arn, self.output)
        self.latencies = LatencyHistogram()
        shards = self.kinesis.list_shards(StreamName=self.pipeline.stream_name)["Shards"]
        self.pollers = [
            ShardPoller(self.kinesis, self.pipeline.stream_name, self.pipeline.stream_arn, shard["ShardId"],
                        self.pipeline.mapping, self._invoke, self.pipeline.function_name,
                        self.pipeline.function_timeout_seconds, self.failure_destination, self.latencies)
            for shard in shards
        ]
        for poller in self.pollers:
            poller.start()

    def _detector_warmup(self) -> int:
        """The stack's warmupReadings, as the deployed processor reads its settings."""
        raw = json.loads(self.pipeline.function_environment.get(ENV_ANOMALY_SETTINGS) or "{}")
        return validate_detector_settings(raw).warmupReadings

    def _invoke(self, event: dict, context) -> dict:
        return self.handler.handler(event, context)

    def publish(self) -> dict:
        args = self.args
        mapping = self.pipeline.mapping
        sys.stderr.write(
            f"{args.devices} devices publish {args.rate:g} messages/s each for {args.duration:g} s; results in "
            f"{self.output}\n`processed` moves in steps: like the {args.stack} stack's event source mapping, each "
            f"shard's poller sends the processor a batch when it holds {mapping.batch_size} records (batchSize) "
            f"or after {mapping.batching_window_seconds} s (batchingWindowSeconds)\n")
        with open(self.output / "fleet.log", "wb") as fleet_log:
            fleet = subprocess.Popen([
                sys.executable, "-m", "local.fleet", "--port", str(self.broker_port), "--suffix", self.suffix,
                "--devices", str(args.devices),
                "--rate", str(args.rate), "--duration", str(args.duration), "--sensors", ",".join(args.sensor_list),
                "--seed", str(args.seed), "--malformed", str(args.malformed), "--duplicates", str(args.duplicates),
                "--manifest", str(self.output / "fleet.json"),
                "--detector-warmup", str(self._detector_warmup()),
            ], stderr=fleet_log)
        self.children.append(fleet)
        self.started = time.monotonic()
        while fleet.poll() is None:
            self._progress("publishing")
            self._raise_if_broken()
            time.sleep(1)
        if fleet.returncode != 0:
            raise RuntimeError(f"the simulated fleet failed with exit code {fleet.returncode}; "
                               f"see {self.output / 'fleet.log'}")
        self.publishing_ended = time.monotonic()
        self.backlog_when_publishing_ended = self.bridge.forwarded - self._processed()
        return json.loads((self.output / "fleet.json").read_text())

    def drain(self, manifest: dict) -> None:
        """Wait until every acknowledged message has gone through the rule and the processor.

        No fixed deadline: a slow machine gets the time it needs as long as records
        keep moving; after a stall (nothing moving for well over a batching window),
        stop and let the summary say what is missing.
        """
        stall_timeout_s = max(STALL_TIMEOUT_S, 3 * self.pipeline.mapping.batching_window_seconds)
        acknowledged = manifest["published"] - manifest["publish_failures"]
        moved_at, last_counts = time.monotonic(), None
        while True:
            self._progress("draining")
            self._raise_if_broken()
            counts = (self.bridge.received, self.bridge.forwarded + self.bridge.rejected, self._processed())
            if counts[0] >= acknowledged and counts[1] == counts[0] and counts[2] >= self.bridge.forwarded:
                break
            if counts != last_counts:
                moved_at, last_counts = time.monotonic(), counts
            elif time.monotonic() - moved_at > stall_timeout_s:
                sys.stderr.write(f"\nnothing moved for {stall_timeout_s:.0f} s: received {counts[0]} of "
                                 f"{acknowledged} messages, processed {counts[2]} of {self.bridge.forwarded} "
                                 "records; summarizing what arrived\n")
                break
            time.sleep(0.5)
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(timeout=self.pipeline.function_timeout_seconds)
        self.bridge.stop()
        self._raise_if_broken()
        sys.stderr.write("\n")

    def _raise_if_broken(self) -> None:
        for part in (self.bridge, *self.pollers):
            if part.error is not None:
                raise RuntimeError(f"the local {'rule bridge' if part is self.bridge else part.name} stopped: "
                                   f"{part.error!r}; see {self.output / LOG_FILE} and {self.output / 'moto.log'}")

    def _processed(self) -> int:
        return sum(p.records_done for p in self.pollers)

    def _progress(self, phase: str) -> None:
        elapsed = time.monotonic() - self.started
        processed = self._processed()
        sys.stderr.write(
            f"\r{phase:10s} {elapsed:6.0f} s | received {self.bridge.received:>8} | rule errors "
            f"{self.bridge.rejected:>5} | in stream {self.bridge.forwarded:>8} | processed {processed:>8} "
            f"({processed / elapsed if elapsed else 0:5.0f} records/s)  "
        )
        sys.stderr.flush()

    def timing(self) -> dict:
        last_done = max((p.last_done_at for p in self.pollers), default=self.publishing_ended)
        publishing_s = self.publishing_ended - self.started
        flowing_s = max(last_done, self.publishing_ended) - self.started
        return {
            "publishing_s": round(publishing_s, 1),
            "flowing_s": round(flowing_s, 1),
            "backlog_when_publishing_ended": self.backlog_when_publishing_ended,
            "drain_s": round(max(0.0, last_done - self.publishing_ended), 1),
            "latency_ms": {f"p{int(q * 100)}": self.latencies.percentile(q) for q in (0.5, 0.95, 0.99)},
        }

    def stop(self) -> None:
        for child in reversed(self.children):
            stop(child)
        self.metrics_sink.close()
        logging.getLogger().removeHandler(self.log_handler)
        self.log_handler.close()


def summarize_run(run: LocalRun, manifest: dict) -> dict:
    """Read the stores before the servers stop, save the table snapshot, and summarize."""
    pipeline = run.pipeline
    items = list(summaries.table_items(boto3.client("dynamodb", region_name=pipeline.region), pipeline.table_name))
    summaries.save_snapshot(items, run.output / summaries.SNAPSHOT_FILE)
    # The run's S3 objects, kept for `python -m local.query` once moto's server is gone.
    export_archive(run.s3, pipeline.archive_bucket, run.output / ARCHIVE_DIR)
    run.metrics_sink.flush()
    stores = {
        "table_items": items,
        "raw_line_count": sum(1 for _ in summaries.archive_lines(run.s3, pipeline.archive_bucket, RAW_PREFIX)),
        "quarantine_lines": list(summaries.archive_lines(run.s3, pipeline.archive_bucket, QUARANTINE_PREFIX)),
        "failure_destination_records": sum(p.records_to_failure_destination for p in run.pollers),
        "failure_destination_distinct": len(run.failure_destination.distinct_records),
    }
    summary = summaries.summarize(manifest, stores, summaries.processor_metrics(run.output / METRIC_LINES_FILE), {
        "received": run.bridge.received, "rule_errors": run.bridge.rejected, "forwarded": run.bridge.forwarded,
        "invocations": sum(p.invocations for p in run.pollers),
        "partial_batch_retries": sum(p.partial_retries for p in run.pollers),
        "function_errors": sum(p.function_errors for p in run.pollers),
        "timing": run.timing(),
    })
    summary["settings"] = {
        "stack": run.args.stack, "devices": run.args.devices, "rate": run.args.rate, "duration": run.args.duration,
        "sensors": run.args.sensor_list, "seed": run.args.seed, "malformed": run.args.malformed,
        "duplicates": run.args.duplicates, "batch_size": pipeline.mapping.batch_size,
        "batching_window_s": pipeline.mapping.batching_window_seconds, "shards": len(run.pollers),
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_command("./run-local.sh", lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    args = _arguments(argv)
    # The program first, under mocks: a configuration problem stops here, before any process
    # starts or any run folder is made.
    program = run_program(args.stack)
    run = LocalRun(args)
    try:
        run.start(program)
        manifest = run.publish()
        run.drain(manifest)
        summary = summarize_run(run, manifest)
    finally:
        run.stop()
    summary["plot"] = None
    if not args.no_plot:
        from local.plot import plot_devices

        plot_devices(manifest, run.output / summaries.SNAPSHOT_FILE, run.output / summaries.PLOT_FILE,
                     seed=args.seed, sensors=args.sensor_list)
        summary["plot"] = summaries.PLOT_FILE
    (run.output / summaries.SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    print(summaries.render(summary, run.output, latest=args.output / LATEST))
    return 0 if summary["every_message_accounted_for"] else 1


if __name__ == "__main__":
    sys.exit(main())
