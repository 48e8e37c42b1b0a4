"""What a local run did, checked against what the fleet injected.

Counts come from three independent places, so one cannot hide an error in
another: the fleet's manifest (what was published and injected), the stores
(the metrics table, the archive's raw and quarantine objects, the on-failure
destination), and the processor's own metric lines (embedded metric format,
as CloudWatch would receive them). A message is accounted for when it is a
reading stored once, a duplicate of one, quarantined, kept by the rule's
error action, or sent to the on-failure destination.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from pathlib import Path
from typing import Iterator

from handler.layout import (
    METRIC_DIMENSION_ANOMALY_KIND,
    METRIC_DUPLICATES,
    METRIC_QUARANTINED,
    METRIC_READINGS_STORED,
    METRIC_RECORDS_IN,
)
from local.runs import SNAPSHOT_FILE, default_output
from simulation.series import EVENT_KINDS, InjectedEvent, score

SUMMARY_FILE = "summary.json"
PLOT_FILE = "readings.png"
EPISODE = "episode"
DEVICE_SCOPE = "device"  # handler.detection.DEVICE_SCOPE, without importing the detector here


def table_items(dynamodb, table: str) -> Iterator[dict]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        yield from page["Items"]


def archive_lines(s3, bucket: str, prefix: str) -> Iterator[str]:
    """Every line of every gzip'd JSON-lines object under `prefix`."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            yield from gzip.decompress(body).decode().splitlines()


def processor_metrics(metric_lines: Path) -> dict[str, int]:
    """The processor's own counts, summed over its EMF lines (one set per invocation)."""
    totals = {name: 0 for name in (METRIC_RECORDS_IN, METRIC_READINGS_STORED, METRIC_DUPLICATES, METRIC_QUARANTINED)}
    with open(metric_lines, encoding="utf-8") as lines:
        for line in lines:
            document = json.loads(line)
            if METRIC_DIMENSION_ANOMALY_KIND in document:
                continue
            for name in totals:
                totals[name] += int(document.get(name, 0))
    return totals


def save_snapshot(items: list[dict], path: Path) -> None:
    """The table as DynamoDB JSON lines, for `python -m local.inspect` once the servers are gone."""
    with open(path, "w", encoding="utf-8") as snapshot:
        for item in items:
            snapshot.write(json.dumps(item, default=_binary_as_base64) + "\n")


def _binary_as_base64(value: object) -> str:
    # DynamoDB JSON writes binary (B) attributes, such as a window's `applied` record, as base64.
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def episodes(items: list[dict]) -> list[dict]:
    return [i for i in items if i.get("item_type", {}).get("S") == EPISODE]


def detections(manifest: dict, items: list[dict]) -> list[tuple[str, str, int, str]]:
    """What the processor reported, as simulation.series.score takes it: (device, sensor, reading
    index, kind), one per episode at its first reading. The fleet labels sensors, so an episode of
    the device's joint model counts once for each sensor it names. The only place that knows how
    the processor stores what it found."""
    period, start = manifest["period_ms"], manifest["start_ms"]
    found = []
    for episode in episodes(items):
        scope = episode["scope"]["S"]
        sensors = episode.get("sensors", {}).get("SS", []) if scope == DEVICE_SCOPE else [scope]
        index = (int(episode["started_at"]["N"]) - start) // period
        found.extend((episode["device_id"]["S"], sensor, index, episode["kind"]["S"]) for sensor in sensors)
    return found


def detection_quality(manifest: dict, items: list[dict]) -> dict[str, dict]:
    """Per kind: injected events, how many were found, reports and true reports, precision, recall."""
    events = [InjectedEvent(e["device_id"], e["sensor"], e["kind"], e["start"], e["end"]) for e in manifest["events"]]
    quality = {}
    for kind, result in score(events, detections(manifest, items)).items():
        quality[kind] = {"injected": result.injected, "detected": result.detected_events,
                         "detections": result.detections, "true_detections": result.true_detections,
                         "precision": _ratio(result.precision), "recall": _ratio(result.recall)}
    return quality


def _ratio(value: float) -> float | None:
    # Undefined (nothing injected, nothing detected) is null in JSON, not NaN.
    return None if math.isnan(value) else round(value, 3)


def summarize(manifest: dict, stores: dict, processor: dict[str, int], run: dict) -> dict:
    """`stores`: table items, raw and quarantine lines, failure-destination records; `run`: the run's own counts."""
    items = stores["table_items"]
    windows = [i for i in items if i.get("item_type", {}).get("S") == "metrics"]
    quarantined = [json.loads(line) for line in stores["quarantine_lines"]]
    stored = sum(int(w["reading_count"]["N"]) for w in windows)
    archived = stores["raw_line_count"]
    failed = stores["failure_destination_records"]
    by_kind: dict[str, int] = {}
    for episode in episodes(items):
        by_kind[episode["kind"]["S"]] = by_kind.get(episode["kind"]["S"], 0) + 1
    published, duplicates = manifest["published"], manifest["duplicates"]
    # A failed batch may hold duplicates too: count the distinct messages it held.
    accounted = stored + duplicates + len(quarantined) + run["rule_errors"] + stores["failure_destination_distinct"]
    never_reached_rule = published - manifest["publish_failures"] - run["received"]
    stored_once = stored == archived <= manifest["readings"]
    timing = run["timing"]
    return {
        "published": published,
        "published_readings": manifest["readings"],
        "readings_per_device": manifest["readings_per_device"],
        # The fleet injects trouble only once the detector has learned each sensor (local/fleet.py).
        "trouble_after_readings": 2 * manifest["warmup"],
        "published_duplicates": duplicates,
        "published_malformed": manifest["malformed"],
        "publish_failures": manifest["publish_failures"],
        "received_by_rule": run["received"],
        "never_reached_rule": never_reached_rule,
        "rule_errors": run["rule_errors"],
        "records_into_stream": run["forwarded"],
        "records_processed": processor[METRIC_RECORDS_IN],
        "readings_stored": stored,
        "readings_archived": archived,
        "duplicates_dropped": processor[METRIC_DUPLICATES],
        "quarantined": len(quarantined),
        "quarantine_reasons": {reason: sum(1 for q in quarantined if q["reason"] == reason)
                               for reason in sorted({q["reason"] for q in quarantined})},
        "sent_to_failure_destination": failed,
        "unaccounted": published - accounted,
        "every_message_accounted_for": accounted == published and stored_once and never_reached_rule == 0,
        "episodes_by_kind": dict(sorted(by_kind.items())),
        "detection": detection_quality(manifest, items),
        "publishing_s": timing["publishing_s"],
        "published_per_s": _rate(published, timing["publishing_s"]),
        # Over the time readings were flowing: first publish to last batch stored.
        "throughput_readings_per_s": _rate(stored, timing["flowing_s"]),
        "backlog_when_publishing_ended": timing["backlog_when_publishing_ended"],
        "drain_s": timing["drain_s"],
        "latency_ms": timing["latency_ms"],
        "invocations": run["invocations"],
        "partial_batch_retries": run["partial_batch_retries"],
        "function_errors": run["function_errors"],
    }


def render(summary: dict, output: Path, latest: Path | None = None) -> str:
    """The summary as a person reads it at the end of a run: counts in words, every figure labeled."""
    malformed = sum(summary["published_malformed"].values())
    explained = summary["rule_errors"] + summary["quarantined"]
    latency = summary["latency_ms"]
    lines = [
        f"Published {summary['published']} messages: {summary['published_readings']} readings, "
        f"{summary['published_duplicates']} duplicates, {malformed} malformed"
        + (f" ({_words(summary['published_malformed'])})" if malformed else ""),
        f"  malformed {malformed} {'=' if explained == malformed else '!='} {summary['rule_errors']} rule errors "
        f"+ {summary['quarantined']} quarantined",
        f"  rule errors (kept by the rule's error action): {summary['rule_errors']}",
        f"  records into Kinesis:                          {summary['records_into_stream']}",
        f"  records processed (as the processor reports):  {summary['records_processed']}",
        f"  readings stored in the table / archived in S3: {summary['readings_stored']} / "
        f"{summary['readings_archived']}",
        f"  duplicates recognised and dropped:             {summary['duplicates_dropped']}",
        f"  quarantined:                                   {summary['quarantined']}"
        + (f" ({_words(summary['quarantine_reasons'])})" if summary["quarantined"] else ""),
        f"  sent to the on-failure destination:            {summary['sent_to_failure_destination']}",
        "  every message accounted for:                   "
        + ("yes" if summary["every_message_accounted_for"] else
           f"NO ({summary['unaccounted']} unaccounted, {summary['never_reached_rule']} never reached the rule)"),
        *([f"  the processor failed {summary['function_errors']} times (tracebacks in {output / 'run.log'}); "
           f"the batches that gave up are in {output / 'aws' / 'lambda'}: replay them with "
           ".venv/bin/python -m operations.replay once the cause is fixed"]
          if summary["sent_to_failure_destination"] else []),
        "Anomaly episodes by kind: " + (_words(summary["episodes_by_kind"]) or "none"),
        "Detection against the injected labels (one report per episode, at its first reading, per sensor it names):",
    ]
    width = max((len(kind) for kind in summary["detection"]), default=6)
    for name, quality in summary["detection"].items():
        kind = name.replace("_", " ")
        if quality["injected"]:
            lines.append(f"  {kind:{width}s}  {quality['injected']:3d} injected, {quality['detected']:3d} found, "
                         f"{quality['detections']:3d} reported, {quality['true_detections']:3d} of them true: "
                         f"precision {_shown(quality['precision'])}, recall {_shown(quality['recall'])}")
        elif quality["detections"]:
            lines.append(f"  {kind:{width}s}  not injected, {quality['detections']:3d} reported (all false)")
    missing = [kind for kind in EVENT_KINDS if not summary["detection"].get(kind, {}).get("injected")]
    if missing:
        # The generator places slow trouble (drifts, jumps, stuck sensors) only where the series is long enough.
        missing_words = ", ".join(kind.replace("_", " ") for kind in missing)
        lines.append(f"  not injected in this run: {missing_words} (trouble starts after the detector's "
                     f"warm-up, reading {summary['trouble_after_readings']}; {summary['readings_per_device']} "
                     "readings per device leave too little room: a longer --duration or a higher --rate injects "
                     "every kind)")
    plot = summary.get("plot")
    # Both commands read the default output's `latest`; another --output needs naming.
    elsewhere = latest is None or latest.parent.resolve() != default_output().resolve()
    snapshot = f" --snapshot {output}" if elsewhere else ""
    archive = f" --archive {output / 'archive'}" if elsewhere else ""
    lines += [
        f"Throughput: published {summary['published_per_s']} messages/s for {summary['publishing_s']} s; "
        f"stored {summary['throughput_readings_per_s']} readings/s; backlog when publishing ended "
        f"{summary['backlog_when_publishing_ended']} records, drained in {summary['drain_s']} s",
        f"End-to-end latency (device timestamp to stored): p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
        f"p99 {latency['p99']} ms",
        f"Results in {output}" + (f" ({latest} points here)" if latest else "") + ":",
        f"  {SUMMARY_FILE}, {plot or 'no plot (--no-plot)'}, {SNAPSHOT_FILE} (the table), archive/ (the bucket's "
        "objects), run.log (warnings and errors)",
        f"  .venv/bin/python -m local.inspect --device press-000{snapshot}    # one device's metrics and episodes",
        f'  .venv/bin/python -m local.query{archive} "SELECT reason, count(*) AS records FROM quarantine '
        'GROUP BY reason"',
    ]
    return "\n".join(lines)


def _words(counts: dict[str, int]) -> str:
    """`{"not_json": 20, "bad_value": 3}` as `not json 20, bad value 3`."""
    return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items())


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def _shown(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"
