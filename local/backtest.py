"""Backtest the detector on a plant's own history: CSV exports in, episodes, a summary and plots out.

    python -m local.backtest FILE.csv [FILE ...] [--stack dev] [--setting spikeZ=12] [--labels anomaly]

Each file's rows become device messages as the stack's topic rule forwards
them (the bytes `build_message` and `project` give, with the stack's topic;
formatted directly by `RuleRecords`, which checks itself against them), base64
Kinesis records with increasing sequence numbers, and go through the handler's own
path (`handler.core.run_in_memory`: decode, validate, detect, aggregate, the
device state stored and read back between batches) in batches of the stack's
`batchSize`, against a table held in memory. No AWS, no broker. The episodes
are the episode items that table then holds: what the deployed handler stores
for the same readings.

Progress shows on stderr on a terminal, elsewhere (a log) with --progress.
Written to --output (default `backtest-results/<file stem>/`): `episodes.csv`,
`summary.txt` and one `<device>.png` per device, all in the file's own time.
Files the message format would refuse rows of, or that cannot be read at all,
are reported, never silently dropped; an unreadable file exits 2 with one line
naming the file and the fix.
"""

from __future__ import annotations

import argparse
import binascii
import bisect
import csv
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bench.detection_real import SKAB_COLUMNS, Confusion, EventScore, score_events, setting_value
from handler import detection, layout, quarantine
from handler.core import Planner, run_in_memory
from handler.detection import Detector
from handler.detector_settings import DEFAULTS, DetectorSettingsError, validate
from handler.message_format import (FIELD_DEVICE_ID, FIELD_READINGS, FIELD_RECEIVED_AT, FIELD_SCHEMA_VERSION,
                                    FIELD_TIMESTAMP, FIELD_TOPIC_DEVICE_ID, KNOWN_SENSORS, MIN_TIMESTAMP_MS,
                                    SCHEMA_VERSION, SENSOR_NAME_PATTERN, build_message, project, telemetry_topic)
from handler.settings import SettingsError
from handler.settings import load as load_processor_settings
from local.csv_series import CsvError, ReadOptions, Series, read_series
from harness.stack_config import (CONFIG_ERROR_EXIT, PROJECT_DIR, config_error_message, load_project,
                                  load_stack_config, project_name)

PROG = "backtest"
DEFAULT_OUTPUT = Path("backtest-results")
# Without --stack the records carry this stack suffix in their topic: no stack's rule is imitated.
NO_STACK_SUFFIX = "backtest"
SHARD_ID = "shardId-000000000000"
FIRST_SEQUENCE = 49_000_000_000_000_000_000
# IoT Core receives a message a little after the device's time, and Kinesis stores it a little later.
RECEIVE_DELAY_MS = 120
ARRIVAL_DELAY_MS = 80
DAY_MS = 86_400_000
# Old series move by whole weeks: the weekday and the time of day stay, which the detector's weekly profile keys on.
WEEK_MS = 7 * DAY_MS
PROGRESS_EVERY_S = 0.25   # a TTY's line, updated in place
PROGRESS_LINE_EVERY_S = 10.0  # elsewhere (a log, CI): one line this often


# ---------------------------------------------------------------------------------------------------------------
# What the replay runs with: the stack's batch size, retention, hard limits and detector settings.

@dataclass
class RunConfig:
    stack: str | None
    suffix: str
    batch_size: int
    ttl_days: int
    sensor_limits: dict[str, tuple[float, float]]
    anomaly_settings: dict[str, int | float]
    planner: Planner = field(init=False)

    def __post_init__(self) -> None:
        # The handler's cold start turns the function's environment into settings: go through it, so a
        # value accepted here is a value the function starts with.
        environment = {
            layout.ENV_METRICS_TABLE: "backtest", layout.ENV_ARCHIVE_BUCKET: "backtest",
            layout.ENV_METRICS_TTL_DAYS: str(self.ttl_days),
            layout.ENV_SENSOR_LIMITS: json.dumps({name: {"low": low, "high": high}
                                                  for name, (low, high) in self.sensor_limits.items()}),
            layout.ENV_ANOMALY_SETTINGS: json.dumps(self.anomaly_settings, sort_keys=True),
        }
        settings = load_processor_settings(environment)
        self.sensor_limits = dict(settings.sensor_limits)
        self.warmup_readings = settings.detector.warmupReadings
        self.planner = Planner(Detector(dict(settings.sensor_limits), settings.detector), settings.ttl_days)


def _limit(text: str) -> tuple[str, tuple[float, float]]:
    name, separator, bounds = text.partition("=")
    if separator and not SENSOR_NAME_PATTERN.match(name.strip()):
        raise SettingsError(f"--limits {text!r}: {name.strip()!r} is not a sensor name ({SENSOR_NAME_PATTERN.pattern}): "
                            "use the name the mapping prints")
    low, colon, high = bounds.partition(":")
    try:
        parsed = (float(low), float(high))
    except ValueError:
        parsed = None
    if not separator or not colon or parsed is None or not all(map(math.isfinite, parsed)) or parsed[0] >= parsed[1]:
        raise SettingsError(f"--limits {text!r}: expected sensor=LOW:HIGH with LOW < HIGH, e.g. pressure_bar=-1:10")
    return name.strip(), parsed


def run_config(stack: str | None, settings: list[str], limits: list[str]) -> RunConfig:
    """The stack's settings (Pulumi.yaml's defaults without --stack), then --setting and --limits."""
    if stack:
        from components.settings import read_settings  # the program's own reader: the same problems, worded alike

        config = load_stack_config(stack)
        prefix = f"{project_name()}:"
        pipeline = read_settings(lambda key: config.get(prefix + key), PROJECT_DIR,
                                 [key[len(prefix):] for key in config if key.startswith(prefix)])
        suffix, batch_size, ttl_days = pipeline.suffix, pipeline.batch_size, pipeline.metrics_ttl_days
        sensor_limits = {name: (bounds["low"], bounds["high"])
                         for name, bounds in json.loads(pipeline.sensor_limits_json()).items()}
        anomaly = dict(pipeline.anomaly_settings)
    else:
        declared = load_project().get("config") or {}
        suffix = NO_STACK_SUFFIX
        batch_size, ttl_days = declared["batchSize"]["default"], declared["metricsTtlDays"]["default"]
        sensor_limits = {name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()}
        anomaly = {}
    for text in settings:
        name, value = setting_value("--setting", text)
        anomaly[name] = value
    try:
        validate(anomaly)  # the stack's words: `anomalyDetection.<name>` = ... is not allowed: ...
    except DetectorSettingsError as error:
        raise SettingsError(f"{'--setting / ' if settings else ''}{error}") from None
    for text in limits:
        name, bounds = _limit(text)
        sensor_limits[name] = bounds
    return RunConfig(stack, suffix, batch_size, ttl_days, sensor_limits, anomaly)


# ---------------------------------------------------------------------------------------------------------------
# The replay.

class Progress:
    """Rows sent so far, on stderr: one line updated in place on a terminal, else a line now and then."""

    @classmethod
    def shown(cls, label: str, total: int, stream, *, asked: bool) -> "Progress | None":
        """A progress display on a terminal, or anywhere when asked (--progress); None otherwise."""
        return cls(label, total, stream) if asked or getattr(stream, "isatty", lambda: False)() else None

    def __init__(self, label: str, total: int, stream=None) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.last = time.perf_counter()
        self.shown = False

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < (PROGRESS_EVERY_S if self.tty else PROGRESS_LINE_EVERY_S):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        text = (f"{self.label}: {done:,} / {self.total:,} rows ({100 * done / max(self.total, 1):.0f} %), "
                f"{rate:,.0f} rows/s")
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@dataclass
class Replay:
    series: Series
    config: RunConfig
    offset_ms: int                      # added to the file's times before sending (0 unless before 2020)
    table: dict = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    late: int = 0
    batches: int = 0
    quarantined: dict[str, list[int]] = field(default_factory=dict)  # reason -> lines of the rows
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    records_cpu_s: float = 0.0        # building the rule's records; the rest of cpu_s is the handler's path
    read_cpu_s: float = 0.0           # reading the file, before the replay
    _episodes: list[dict] | None = field(default=None, repr=False)

    def episodes(self) -> list[dict]:
        """The episode items the table holds, in time order (read once the replay is over)."""
        if self._episodes is None:
            found = [item for item in self.table.values() if item.get("item_type", {}).get("S") == "episode"]
            self._episodes = sorted(found, key=lambda item: (int(item["started_at"]["N"]), item["device_id"]["S"],
                                                             item["scope"]["S"]))
        return self._episodes

    def rows_by_device(self) -> list[list[int]]:
        rows: list[list[int]] = [[] for _ in self.series.devices]
        for row, device in enumerate(self.series.device_index):
            rows[device].append(row)
        return rows


# The handler's quarantine reasons as a summary says them (the others are the format's own names).
QUARANTINE_REASONS = {
    quarantine.CONFLICT: "conflict: the time of an earlier row of the device with other values (the first is kept)",
}


def time_offset(series: Series, now_ms: int | None = None) -> int:
    """0, or whole weeks that move a series with times before 2020 (which the format refuses) to end shortly
    before now, as the real-data benchmark does; results are shown in the file's own time again."""
    first, last = min(series.times), max(series.times)
    if first >= MIN_TIMESTAMP_MS:
        return 0
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    offset = (now_ms - 60_000 - last) // WEEK_MS * WEEK_MS
    if first + offset < MIN_TIMESTAMP_MS:
        raise CsvError(f"{series.path}: the times span {(last - first) / DAY_MS / 365.25:.1f} years from before "
                       "2020, more than fits between 2020 and now (the message format refuses earlier times): "
                       "split the file")
    return offset


def kinesis_records(series: Series, suffix: str, offset_ms: int, start: int, stop: int) -> list[dict]:
    """Rows start..stop as the stack's topic rule would put them into Kinesis, sequence numbers by row: each
    row's message built (`build_message`), published as JSON and projected by the rule (`project`)."""
    topics = [telemetry_topic(suffix, device) for device in series.devices]
    columns = [(column.sensor, column.values) for column in series.sensors]
    times, device_index, devices = series.times, series.device_index, series.devices
    records = []
    for row in range(start, stop):
        values = {name: values[row] for name, values in columns if values[row] == values[row]}  # NaN: empty cell
        timestamp = times[row] + offset_ms
        payload = json.dumps(build_message(devices[device_index[row]], timestamp, values)).encode()
        received_at = timestamp + RECEIVE_DELAY_MS
        data, partition_key = project(topics[device_index[row]], payload, received_at, suffix=suffix)
        records.append(_kinesis_record(row, data, partition_key, received_at))
    return records


def _kinesis_record(row: int, data: bytes, partition_key: str, received_at: int) -> dict:
    sequence = str(FIRST_SEQUENCE + row)
    return {
        "eventSource": "aws:kinesis", "eventID": f"{SHARD_ID}:{sequence}",
        "kinesis": {"data": binascii.b2a_base64(data, newline=False).decode("ascii"), "sequenceNumber": sequence,
                    "partitionKey": partition_key, "approximateArrivalTimestamp": (received_at + ARRIVAL_DELAY_MS) / 1000},
    }


class RuleRecords:
    """The same records as `kinesis_records`, byte for byte, without its JSON round trip per row.

    The rule's output for a row is the device's message as compact JSON (schema
    version, device id, time, the row's values by sensor, empty cells left out)
    with the topic's device id and the receive time after it. Building it
    from text pieces made once per device and sensor costs about a sixth of
    building the message, dumping, parsing and dumping it again. The first
    record of every batch is also built by `kinesis_records` and must be
    equal, so a change to the message format or the rule stops the replay
    instead of leaving it behind.
    """

    def __init__(self, series: Series, suffix: str, offset_ms: int) -> None:
        self.series, self.suffix, self.offset_ms = series, suffix, offset_ms

        def text(value: object) -> str:
            return json.dumps(value, separators=(",", ":"))

        # Per device: the JSON up to the time, and from after the values to the receive time.
        self.heads = [f"{{{text(FIELD_SCHEMA_VERSION)}:{SCHEMA_VERSION},{text(FIELD_DEVICE_ID)}:{text(device)},"
                      f"{text(FIELD_TIMESTAMP)}:" for device in series.devices]
        self.readings_open = f",{text(FIELD_READINGS)}:{{"
        self.tails = [f"}},{text(FIELD_TOPIC_DEVICE_ID)}:{text(device)},{text(FIELD_RECEIVED_AT)}:"
                      for device in series.devices]
        self.labels = [f"{text(column.sensor)}:" for column in series.sensors]

    def batch(self, start: int, stop: int) -> list[dict]:
        series, offset_ms = self.series, self.offset_ms
        # Each cell as `"sensor":value` (json writes floats as repr does); an empty cell (NaN) is `"sensor":nan`.
        cells = [list(map(label.__add__, map(repr, column.values[start:stop])))
                 for label, column in zip(self.labels, series.sensors)]
        # Any empty cell makes its column's sum NaN (a sum that overflows only costs the filtering below).
        gaps = any(math.isnan(sum(column.values[start:stop])) for column in series.sensors)
        heads, readings_open, tails, devices = self.heads, self.readings_open, self.tails, series.devices
        times, device_index = series.times, series.device_index
        records = []
        for row, row_cells in zip(range(start, stop), zip(*cells)):
            device = device_index[row]
            timestamp = times[row] + offset_ms
            received_at = timestamp + RECEIVE_DELAY_MS
            values = ",".join(cell for cell in row_cells if not cell.endswith(":nan")) if gaps else ",".join(row_cells)
            data = f"{heads[device]}{timestamp}{readings_open}{values}{tails[device]}{received_at}}}".encode()
            records.append(_kinesis_record(row, data, devices[device], received_at))
        if records and records[0] != kinesis_records(series, self.suffix, offset_ms, start, start + 1)[0]:
            raise RuntimeError(f"the replay's record for line {series.lines[start]} is not the rule's: "
                               "RuleRecords must follow handler/message_format.py's build_message and project")
        return records


def replay(series: Series, config: RunConfig, progress: Progress | None = None, now_ms: int | None = None) -> Replay:
    run = Replay(series, config, time_offset(series, now_ms))
    began, began_cpu = time.perf_counter(), time.process_time()
    rule = RuleRecords(series, config.suffix, run.offset_ms)
    total = len(series)
    for start in range(0, total, config.batch_size):
        stop = min(total, start + config.batch_size)
        before = time.process_time()
        records = rule.batch(start, stop)
        run.records_cpu_s += time.process_time() - before
        plans = run_in_memory(config.planner, records, run.table)
        run.batches += 1
        for plan in plans:
            run.stored += len(plan.applied)
            run.duplicates += plan.duplicates
            run.late += plan.late
            for rejected in plan.quarantined:
                row = int(rejected.sequence_number) - FIRST_SEQUENCE
                reason = QUARANTINE_REASONS.get(rejected.reason, rejected.reason)
                run.quarantined.setdefault(reason, []).append(series.lines[row])
        if progress:
            progress.update(stop)
    if progress:
        progress.finish()
    run.elapsed_s = time.perf_counter() - began
    run.cpu_s = time.process_time() - began_cpu
    return run


# ---------------------------------------------------------------------------------------------------------------
# Scoring against a label column, as the real-data benchmark does.

def _intervals(run: Replay) -> dict[str, tuple[list[int], list[int]]]:
    """Per device, its episodes' [start, end] in the file's time (an open one reaches to the device's last row)."""
    times = run.series.times
    last = {device: max(times[row] for row in rows)
            for device, rows in zip(run.series.devices, run.rows_by_device()) if rows}
    spans: dict[str, list[tuple[int, int]]] = {}
    for item in run.episodes():
        device = item["device_id"]["S"]
        start = int(item["started_at"]["N"]) - run.offset_ms
        end = int(item["ended_at"]["N"]) - run.offset_ms if "ended_at" in item else last[device]
        spans.setdefault(device, []).append((start, end))
    merged: dict[str, tuple[list[int], list[int]]] = {}
    for device, pairs in spans.items():
        starts, ends = [], []
        for start, end in sorted(pairs):
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        merged[device] = (starts, ends)
    return merged


def covered(run: Replay) -> list[bool]:
    """Per kept row: inside one of its device's episodes."""
    intervals = _intervals(run)
    flags = []
    for row, time_ms in enumerate(run.series.times):
        starts, ends = intervals.get(run.series.devices[run.series.device_index[row]], ((), ()))
        at = bisect.bisect_right(starts, time_ms) - 1
        flags.append(at >= 0 and time_ms <= ends[at])
    return flags


@dataclass
class LabelScore:
    column: str
    skipped_per_device: int
    pointwise: Confusion
    everything: Confusion
    events: EventScore
    unlabeled: int


def score_labels(run: Replay) -> LabelScore:
    """Point-wise (rows after each device's warm-up) and event-level (alerts closer than six rows merge)."""
    series = run.series
    flags = covered(run)
    warmup = run.config.warmup_readings
    pointwise, everything = Confusion(), Confusion()
    events = EventScore(0, 0, 0, 0)
    unlabeled = 0
    for rows in run.rows_by_device():
        labeled = [row for row in rows if series.labels[row] >= 0]
        unlabeled += len(rows) - len(labeled)
        predicted = [flags[row] for row in labeled]
        actual = [series.labels[row] == 1 for row in labeled]
        pointwise.add(predicted[warmup:], actual[warmup:])
        everything.add([True] * len(actual[warmup:]), actual[warmup:])
        score = score_events(predicted, _runs(actual), min(warmup, len(predicted)))
        events = EventScore(events.events + score.events, events.hits + score.hits,
                            events.windows + score.windows, events.windows_hit + score.windows_hit)
    return LabelScore(series.labels_column, warmup, pointwise, everything, events, unlabeled)


def label_lines(score: LabelScore) -> list[str]:
    events = score.events
    return [
        f"Scored against {score.column!r} (rows without a label: {score.unlabeled:,}; the first "
        f"{score.skipped_per_device:,} rows of each device, the detector's warm-up, are not scored)",
        "point-wise, a row detected when it lies inside an episode (an open one reaches to the end):",
        "| detector | precision | recall | F1 | FAR | MAR | TP / FP / TN / FN |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        score.pointwise.row("this detector"),
        score.everything.row("every row anomalous (F1 alone is not a result)"),
        f"event-level, episodes as alerts (closer than six rows merge), labeled runs as windows: "
        f"{events.events} events, {events.hits} inside a window (precision {events.precision:.3f}); "
        f"{events.windows_hit} of {events.windows} windows hit (recall {events.recall:.3f}); F1 {events.f1:.3f}",
    ]


# ---------------------------------------------------------------------------------------------------------------
# Outputs.

def _file_time(run: Replay, ms: int) -> str:
    return run.series.time_format.format(ms - run.offset_ms)


def write_episodes(run: Replay, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device", "kind", "scope", "sensors", "start", "end", "peak_score", "readings"])
        for item in run.episodes():
            writer.writerow([
                item["device_id"]["S"], item["kind"]["S"], item["scope"]["S"], " ".join(item["sensors"]["SS"]),
                _file_time(run, int(item["started_at"]["N"])),
                _file_time(run, int(item["ended_at"]["N"])) if "ended_at" in item else "open at the end",
                item["peak_score"]["N"], item["readings"]["N"],
            ])


def _duration(ms: int) -> str:
    seconds = ms // 1000
    days, rest = divmod(seconds, 86_400)
    return (f"{days} d " if days else "") + time.strftime("%H:%M:%S", time.gmtime(rest))


def summary_lines(run: Replay, score: LabelScore | None) -> list[str]:
    series, config = run.series, run.config
    episodes = run.episodes()
    by_kind: dict[str, int] = {}
    for item in episodes:
        by_kind[item["kind"]["S"]] = by_kind.get(item["kind"]["S"], 0) + 1
    changed = config.anomaly_settings  # what the stack and --setting set; the rest are the defaults
    lines = [
        f"file: {series.path}",
        f"read as: {series.encoding}, {('decimal commas accepted, ' if series.decimal_comma else '')}"
        f"separated by {_separator_name(series.separator)}; time column {series.time_column!r} "
        f"({series.time_format.description})",
        f"devices: {', '.join(series.devices)}" + (f" (from column {series.device_column!r})"
                                                   if series.device_column else " (one device: the file)"),
        "sensors (message-format name <- column):", *series.mapping_lines(),
        "hard limits (a reading outside is a `limit` episode): " + (", ".join(
            f"{column.sensor} {config.sensor_limits[column.sensor][0]:g} to {config.sensor_limits[column.sensor][1]:g}"
            for column in series.sensors if column.sensor in config.sensor_limits) or "none of these sensors"),
        "",
        f"rows read: {series.rows_read:,}" + (f" (and {series.blank_lines:,} blank lines)" if series.blank_lines else ""),
        f"rows refused (not sent; the message format would refuse them): {series.refused.total:,}",
        *(f"  {line}" for line in series.refused.lines()),
        f"rows sent: {len(series):,}" + (f", {series.empty_cells:,} empty cells left out of their reading"
                                         if series.empty_cells else ""),
        f"rows out of time order (sent in file order, as the handler would receive them): "
        f"{series.out_of_order.total:,}",
        *(f"  {line}" for line in series.out_of_order.lines()),
        f"handler: {run.stored:,} readings stored, {run.duplicates:,} duplicates, {run.late:,} late "
        f"(stored, not scored: older than what earlier batches observed), "
        f"{sum(map(len, run.quarantined.values())):,} quarantined",
        *(f"  {len(lines_):,} {reason} (first at lines {', '.join(map(str, lines_[:5]))})"
          for reason, lines_ in sorted(run.quarantined.items())),
        f"time covered: {_file_time(run, min(series.times) + run.offset_ms)} to "
        f"{_file_time(run, max(series.times) + run.offset_ms)} ({_duration(max(series.times) - min(series.times))})",
    ]
    if run.offset_ms:
        lines.append(f"  (times before 2020 are refused by the message format: sent {run.offset_ms // WEEK_MS:,} weeks "
                     f"({run.offset_ms:,} ms) later, shown here in the file's own time)")
    lines += [
        "",
        f"episodes: {len(episodes):,}" + (f" ({', '.join(f'{kind} {count}' for kind, count in sorted(by_kind.items()))})"
                                          if by_kind else ""),
        f"  open at the end: {sum(1 for item in episodes if 'ended_at' not in item)}",
        f"settings: stack {config.stack or '(none: Pulumi.yaml defaults)'}, batches of {config.batch_size} records "
        f"({run.batches:,} batches), detector "
        + (", ".join(f"{name}={value}" for name, value in sorted(changed.items())) if changed else "defaults")
        + f" (defaults: {', '.join(f'{name}={value}' for name, value in DEFAULTS.items())})",
        f"replay (reading the file and plotting apart): {run.elapsed_s:.1f} s, "
        f"{len(series) / max(run.elapsed_s, 1e-9):,.0f} rows/s wall, {len(series) / max(run.cpu_s, 1e-9):,.0f} "
        f"rows/s CPU time (CPU: reading the file {run.read_cpu_s:.2f} s before it, building the rule's records "
        f"{run.records_cpu_s:.2f} s, the handler's path {run.cpu_s - run.records_cpu_s:.2f} s)",
    ]
    if score:
        lines += ["", *label_lines(score)]
    return lines


def _separator_name(separator: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(separator, repr(separator))


PLOT_POINTS = 4000  # per sensor: longer series are drawn as the min and max of each of this many buckets
KIND_COLOURS = {detection.SPIKE: "#d62728", detection.LEVEL_SHIFT: "#ff7f0e", detection.DRIFT: "#9467bd",
                detection.STUCK: "#8c564b", detection.LIMIT: "#e377c2", detection.VARIANCE: "#17becf",
                detection.MULTIVARIATE: "#2ca02c"}


def plot_device(run: Replay, device: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np  # matplotlib's own dependency: installed with it, not a requirement of its own

    series = run.series
    number = series.devices.index(device)
    rows = np.flatnonzero(np.frombuffer(series.device_index, dtype=np.uint16) == number)
    times = np.frombuffer(series.times, dtype=np.int64)[rows]
    order = np.argsort(times, kind="stable")
    rows, times = rows[order], times[order]
    to_datetime = series.time_format.to_datetime
    episodes = [item for item in run.episodes() if item["device_id"]["S"] == device]
    last_ms = int(times[-1])
    # An episode of one reading would be a hairline on a long series: draw at least 1/400 of the axis.
    least_ms = max(1000, (last_ms - int(times[0])) // 400)
    figure, axes = plt.subplots(len(series.sensors), 1, figsize=(13, 1.0 + 1.7 * len(series.sensors)),
                                sharex=True, squeeze=False)
    step = max(1, math.ceil(len(rows) / PLOT_POINTS))
    for axis, column in zip(axes[:, 0], series.sensors):
        values = np.frombuffer(column.values, dtype=np.float64)[rows]
        if step > 1:  # the min and max of each bucket keep spikes visible
            usable = len(values) // step * step
            buckets = values[:usable].reshape(-1, step)
            shown_times = np.repeat(times[:usable:step], 2)
            with warnings.catch_warnings():  # a bucket of empty cells is a gap in the line, not a problem
                warnings.simplefilter("ignore", RuntimeWarning)
                shown = np.column_stack([np.nanmin(buckets, axis=1), np.nanmax(buckets, axis=1)]).ravel()
        else:
            shown_times, shown = times, values
        axis.plot([to_datetime(int(t)) for t in shown_times], shown, linewidth=0.7, color="#3366aa")
        axis.set_ylabel(f"{column.sensor}\n({column.unit})" if column.unit else column.sensor, fontsize=8)
        axis.tick_params(labelsize=7)
        for item in episodes:
            if column.sensor not in item["sensors"]["SS"]:
                continue
            kind = item["kind"]["S"]
            start = int(item["started_at"]["N"]) - run.offset_ms
            end = int(item["ended_at"]["N"]) - run.offset_ms if "ended_at" in item else last_ms
            axis.axvspan(to_datetime(start), to_datetime(max(end, start + least_ms)), alpha=0.35, linewidth=0,
                         color=KIND_COLOURS.get(kind, "#7f7f7f"),
                         label=f"{kind} ({item['scope']['S'] if item['scope']['S'] == 'device' else 'sensor'})")
        if series.labels_column:
            labeled = [bool(series.labels[row] == 1) for row in rows]
            for first, last in _runs(labeled):
                axis.axvspan(to_datetime(int(times[first])), to_datetime(int(times[last])), ymin=0, ymax=0.05,
                             color="black", linewidth=0, label=f"labeled ({series.labels_column})")
        handles, labels = axis.get_legend_handles_labels()
        if handles:
            unique = dict(zip(labels, handles))
            axis.legend(unique.values(), unique.keys(), loc="upper left", fontsize=6, ncols=4)
    zone = getattr(series.time_format, "zone_name", "UTC")
    axes[-1, 0].set_xlabel(f"time as in the file ({series.time_format.description}"
                           + ("" if "offset" in series.time_format.description or zone in
                              series.time_format.description else f", {zone}") + ")", fontsize=8)
    axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(axes[-1, 0].xaxis.get_major_locator()))
    kinds = sorted({item["kind"]["S"] for item in episodes})
    figure.suptitle(f"{device} ({series.path.name}): {len(episodes)} episode{'' if len(episodes) == 1 else 's'}"
                    + (f" ({', '.join(kinds)})" if kinds else "") + ", shaded on the sensors involved", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Consecutive true flags as (first, last) index ranges: labeled windows, shaded label bars."""
    runs, first = [], None
    for index, flag in enumerate(flags + [False]):
        if flag and first is None:
            first = index
        elif not flag and first is not None:
            runs.append((first, index - 1))
            first = None
    return runs


# ---------------------------------------------------------------------------------------------------------------
# The command.

def _output_dirs(files: list[Path], output: Path | None) -> list[Path]:
    stems = [path.stem for path in files]
    names = [f"{path.parent.name}-{path.stem}" if stems.count(path.stem) > 1 else path.stem for path in files]
    if output is None:
        return [DEFAULT_OUTPUT / name for name in names]
    return [output] if len(files) == 1 else [output / name for name in names]


def _pairs(option: str, texts: list[str]) -> dict[str, str]:
    pairs = {}
    for text in texts:
        name, separator, column = text.partition("=")
        if not separator or not name.strip() or not column.strip():
            raise SettingsError(f"{option} {text!r}: expected name=column")
        pairs[name.strip()] = column.strip()
    return pairs


def backtest_file(path: Path, output: Path, options: ReadOptions, config: RunConfig, *, plot: bool = True,
                  out=None, progress: bool = False) -> Replay:
    out = out or sys.stdout
    began = time.process_time()
    series = read_series(path, options)
    read_cpu_s = time.process_time() - began
    print(f"{path}: {len(series.sensors)} sensor{'s' if len(series.sensors) > 1 else ''}, mapped as", file=out)
    print("\n".join(series.mapping_lines()), file=out)
    run = replay(series, config, Progress.shown(path.name, len(series), sys.stderr, asked=progress))
    run.read_cpu_s = read_cpu_s
    score = score_labels(run) if series.labels_column else None
    output.mkdir(parents=True, exist_ok=True)
    write_episodes(run, output / "episodes.csv")
    lines = summary_lines(run, score)
    (output / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if plot:
        for device in series.devices:
            plot_device(run, device, output / f"{device}.png")
    print("\n".join(line for line in lines[lines.index("") + 1:]), file=out)
    print(f"written: {output}/ (episodes.csv, summary.txt"
          + (f", {len(series.devices)} plot{'s' if len(series.devices) > 1 else ''}" if plot else "") + ")", file=out)
    return run


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="python -m local.backtest", description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("files", nargs="+", type=Path, metavar="FILE.csv")
    command.add_argument("--output", type=Path, help="folder of the results (default backtest-results/<file stem>/; "
                         "with several files, one folder per file under it)")
    command.add_argument("--stack", help="take batchSize, metricsTtlDays, sensorLimits and anomalyDetection from "
                         "Pulumi.<stack>.yaml (default: Pulumi.yaml's defaults)")
    command.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                         help="a detector setting, as in the stack's anomalyDetection (repeatable), e.g. spikeZ=12")
    command.add_argument("--limits", action="append", default=[], metavar="SENSOR=LOW:HIGH",
                         help="hard limits of a sensor, as in the stack's sensorLimits (repeatable)")
    command.add_argument("--batch-size", type=int, help="records per batch (default: the stack's batchSize)")
    command.add_argument("--separator", help="comma, semicolon, tab or one character (default: sniffed)")
    command.add_argument("--time-column", help="the column holding time (default: found by name)")
    command.add_argument("--time-format", help="a strptime pattern for times that are not ISO 8601, "
                         "'YYYY-MM-DD hh:mm:ss' or epoch s/ms, e.g. '%%d.%%m.%%Y %%H:%%M:%%S'")
    command.add_argument("--timezone", help="IANA zone of times written without an offset (default UTC)")
    command.add_argument("--device-column", help="the column holding device ids (default: one device per file)")
    command.add_argument("--device", help="the device id of a one-device file (default: from the file name)")
    command.add_argument("--sensor", action="append", default=[], metavar="NAME=COLUMN",
                         help="send COLUMN as sensor NAME instead of the name derived from it (repeatable)")
    command.add_argument("--ignore-column", action="append", default=[], metavar="COLUMN",
                         help="leave a column out (repeatable)")
    command.add_argument("--labels", metavar="COLUMN", help="score the episodes against this label column "
                         "(1/true = anomalous): point-wise precision, recall, F1, FAR and event-level figures")
    command.add_argument("--no-plot", action="store_true", help="skip the plots (faster on huge files)")
    command.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a "
                         "terminal (a line every 10 s; on a terminal it is always shown, one line updated in place)")
    return command


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = run_config(args.stack, args.setting, args.limits)
        if args.batch_size is not None:
            if not 1 <= args.batch_size <= 10_000:
                raise SettingsError(f"--batch-size {args.batch_size}: 1 to 10000 records, as batchSize")
            config.batch_size = args.batch_size
        options = ReadOptions(separator=args.separator, time_column=args.time_column, time_format=args.time_format,
                              timezone=args.timezone, device_column=args.device_column, device=args.device,
                              sensors=_pairs("--sensor", args.sensor), ignore=tuple(args.ignore_column),
                              labels=args.labels, known_columns=SKAB_COLUMNS)
    except SettingsError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    except Exception as error:  # a stack file the program would refuse: its own message, no traceback
        message = config_error_message(error)
        if message is None:
            raise
        print(f"{PROG}: {message}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    failed = 0
    for path, output in zip(args.files, _output_dirs(args.files, args.output)):
        try:
            backtest_file(path, output, options, config, plot=not args.no_plot, progress=args.progress)
        except CsvError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            failed += 1
        print()
    return CONFIG_ERROR_EXIT if failed else 0


if __name__ == "__main__":
    sys.exit(main())
