"""Detection quality on real labeled machine and IT series, replayed as the handler sees them.

    python -m bench.detection_real [--data DIR] [--batch-size 500] [--setting levelZ=6.5 ...]
    python -m bench.detection_real --detector-only [--readings 200000] [--baseline OLD_DETECTION.py]

DIR defaults to `../shared/data` relative to the project root (layout and
replay conventions in its README.md; the data is never committed). Each file is
one device. Its rows become device messages (`build_message`), projected as the
stack's topic rule forwards them (`project`), base64-encoded into Kinesis
records with increasing sequence numbers, and go in batches of --batch-size
records through the handler's own batch path (`handler.core.run_in_memory`:
`parse_record`, the batch plan, the detector with the device's state read
from and written to its state item between batches, the episode items), with
the default settings and the stack's default hard limits, against a table
held in memory. Episodes are read back from their items. --setting overrides
one detector setting (the stack's `anomalyDetection` names, checked by the
same validator), for the trade-offs the benchmark's README reports.

Prints:
- SKAB: point-wise precision, recall, F1, FAR, MAR, pooled over files (a row is
  detected when it lies inside an episode, an open one reaching to the end; the
  first 400 rows of each file are never scored), beside SKAB's Hotelling
  T-squared baseline and the "every row anomalous" line, computed here; the
  false positive rows by the kind of episode they lie in, and the share of
  the anomaly-free file's rows in episodes;
- NAB: event-level precision, recall, F1 per series and their mean, beside a
  windowed Gaussian baseline scored the same way;
- for both, the files the defaults were tuned on and the held-out ones apart.

--detector-only times Detector.observe alone (4, 8 and 32 sensors) and prints
the state size per device; with --baseline FILE (another version of
handler/detection.py) it times that one and the current one, alternating.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import math
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from handler.core import Planner, run_in_memory
from handler.detection import Detector, Episode
from handler.detector_settings import DetectorSettings, DetectorSettingsError, validate
from handler.message_format import KNOWN_SENSORS, build_message, project, telemetry_topic
from handler.settings import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_BATCH_SIZE = 500  # the stack's default batchSize
STACK_SUFFIX = "dev"

SKAB_COLUMNS = {
    "Accelerometer1RMS": "accel1_rms", "Accelerometer2RMS": "accel2_rms", "Current": "current",
    "Pressure": "pressure_bar", "Temperature": "temperature", "Thermocouple": "thermocouple",
    "Voltage": "voltage", "Volume Flow RateRMS": "flow_rate",
}
SKAB_TRAINING_ROWS = 400
SKAB_STEP_MS = 1000
NAB_PROBATION = 0.15
NAB_MERGE_STEPS = 6
# Tuned on SKAB valve1/ and these NAB series; SKAB other/ and the rest are held out.
SKAB_TUNE_FOLDER = "valve1"
SKAB_HELD_OUT_FOLDER = "other"
NAB_TUNE = ("cpu_utilization_asg_misconfiguration", "ec2_request_latency_system_failure", "nyc_taxi")
NAB_HELD_OUT = ("rogue_agent_key_hold", "rogue_agent_key_updown")
# Windowed Gaussian baseline: mean and deviation of the last points, alert beyond k deviations.
GAUSSIAN_WINDOW = 2000
GAUSSIAN_K = 3.0


# ---------------------------------------------------------------------------------------------------------------
# Replay through the handler's decoding and the detector, in batches, state serialised between them.

@dataclass
class Replay:
    timestamps: list[int]          # device time of each row
    episodes: list[Episode]        # every episode, final form (an open one has ended_at None)


def kinesis_records(device_id: str, timestamps: list[int], rows: list[dict[str, float]],
                    first_sequence: int = 49_000_000_000_000_000_000) -> list[dict]:
    """The Kinesis records the stack's topic rule would put for these messages."""
    topic = telemetry_topic(STACK_SUFFIX, device_id)
    records = []
    for offset, (timestamp_ms, values) in enumerate(zip(timestamps, rows)):
        payload = json.dumps(build_message(device_id, timestamp_ms, values)).encode()
        received_at = timestamp_ms + 120  # IoT Core's receive time, a little after the device's
        data, partition_key = project(topic, payload, received_at, suffix=STACK_SUFFIX)
        sequence = str(first_sequence + offset)
        records.append({
            "eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{sequence}",
            "kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": sequence,
                        "partitionKey": partition_key, "approximateArrivalTimestamp": (received_at + 80) / 1000},
        })
    return records


def replay(device_id: str, timestamps: list[int], rows: list[dict[str, float]], batch_size: int,
           detector: Detector | None = None) -> Replay:
    """Each batch through the handler's own batch plan (handler.core) against an in-memory table.

    The detector state goes into the device's state item and comes back out of
    it between batches, as in DynamoDB; episodes are read back from their items.
    """
    planner = Planner(detector or default_detector(), ttl_days=30)
    records = kinesis_records(device_id, timestamps, rows)
    table: dict = {}
    for start in range(0, len(records), batch_size):
        for plan in run_in_memory(planner, records[start:start + batch_size], table):
            if plan.quarantined:
                first = plan.quarantined[0]
                raise SystemExit(f"{device_id}: a replayed record was quarantined: {first.reason} {first.detail}")
    episodes = []
    for item in table.values():
        if item.get("item_type", {}).get("S") != "episode":
            continue
        episodes.append(Episode(item["scope"]["S"], item["kind"]["S"], tuple(item["sensors"]["SS"]),
                                int(item["started_at"]["N"]),
                                int(item["ended_at"]["N"]) if "ended_at" in item else None,
                                int(item["last_abnormal_at"]["N"]), float(item["peak_score"]["N"]),
                                int(item["readings"]["N"])))
    return Replay(timestamps, sorted(episodes, key=lambda e: (e.started_at, e.scope)))


def default_detector(settings: DetectorSettings | None = None) -> Detector:
    return Detector({name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()},
                    settings or DetectorSettings())


def episode_rows(run: Replay, episode: Episode) -> range:
    """The indices of the rows in [started_at, ended_at] (an open episode reaches to the end)."""
    timestamps = run.timestamps
    first_ms = timestamps[0]
    step = timestamps[1] - timestamps[0] if len(timestamps) > 1 else 1
    end_ms = episode.ended_at if episode.ended_at is not None else timestamps[-1]
    # Rows are at a fixed step here: index from time.
    return range(max(0, (episode.started_at - first_ms) // step),
                 min(len(timestamps), (end_ms - first_ms) // step + 1))


def covering_kinds(run: Replay) -> list[set[str]]:
    """Per row: the kinds of the episodes it lies in."""
    kinds: list[set[str]] = [set() for _ in run.timestamps]
    for episode in run.episodes:
        for index in episode_rows(run, episode):
            kinds[index].add(episode.kind)
    return kinds


# Where a false positive row lies, against the labeled rows of the episode it is in (see false_row_places).
FALSE_ROW_PLACES = ("after", "before", "apart")


def false_row_places(run: Replay, labels: list[bool], first_scored: int) -> Counter[str]:
    """The scored rows labeled normal that lie in an episode, by where: "after" the last labeled row
    the episode covers (the readings still away from normal once the labels say the anomaly is
    over), "before" its first, or "apart" (an episode that covers no labeled row). A row in
    several episodes counts once, in that order."""
    places: dict[int, int] = {}
    for episode in run.episodes:
        rows = episode_rows(run, episode)
        labeled = [index for index in rows if labels[index]]
        for index in rows:
            if index < first_scored or labels[index]:
                continue
            place = 2 if not labeled else (0 if index > labeled[-1] else 1)
            places[index] = min(place, places.get(index, place))
    return Counter(FALSE_ROW_PLACES[place] for place in places.values())


def covered_rows(run: Replay) -> list[bool]:
    """Per row: inside an episode (see covering_kinds)."""
    return [bool(kinds) for kinds in covering_kinds(run)]


WEEK_MS = 7 * 24 * 3600 * 1000
# SKAB's rows carry no calendar the detector could use: they start on a Monday at midnight UTC.
UNDATED_FIRST_MS = int(datetime(2020, 1, 6, tzinfo=timezone.utc).timestamp() * 1000)


def shifted_timestamps(count: int, step_ms: int, first_ms: int = UNDATED_FIRST_MS) -> list[int]:
    """Row times at a fixed step from the series' own first time, moved by whole weeks to end at least a minute
    before now (the format refuses times before 2020 and in the future). Whole weeks keep the weekday and the time
    of day, so the detector's weekly profile sees the same calendar whenever the benchmark runs."""
    last_ms = first_ms + (count - 1) * step_ms
    offset = (int(time.time() * 1000) - 60_000 - last_ms) // WEEK_MS * WEEK_MS
    return [first_ms + offset + index * step_ms for index in range(count)]


# ---------------------------------------------------------------------------------------------------------------
# SKAB: point-wise.

@dataclass
class Confusion:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, predicted: list[bool], actual: list[bool]) -> None:
        for p, a in zip(predicted, actual):
            if p and a:
                self.tp += 1
            elif p:
                self.fp += 1
            elif a:
                self.fn += 1
            else:
                self.tn += 1

    def __iadd__(self, other: "Confusion") -> "Confusion":
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn
        return self

    def row(self, name: str) -> str:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        far = self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0
        mar = self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0
        return (f"| {name} | {p:.3f} | {r:.3f} | **{f1:.3f}** | {100 * far:.1f} % | {100 * mar:.1f} % | "
                f"{self.tp} / {self.fp} / {self.tn} / {self.fn} |")


def read_skab(path: Path) -> tuple[list[dict[str, float]], list[bool]]:
    """The rows as sensor readings, and their labels (all normal in a file without an `anomaly` column)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        rows, labels = [], []
        for line in reader:
            rows.append({SKAB_COLUMNS[column]: float(line[column]) for column in SKAB_COLUMNS})
            labels.append(float(line.get("anomaly") or 0) > 0)  # scoring only: never sent
    return rows, labels


def hotelling_baseline(rows: list[dict[str, float]]) -> list[bool]:
    """SKAB's T-squared baseline: mean and covariance of the training rows, alarm above the 99 % chi-square UCL."""
    names = list(SKAB_COLUMNS.values())
    train = [[row[name] for name in names] for row in rows[:SKAB_TRAINING_ROWS]]
    size, count = len(names), len(train)
    mean = [sum(column) / count for column in zip(*train)]
    cov = [[sum((r[i] - mean[i]) * (r[j] - mean[j]) for r in train) / (count - 1) for j in range(size)]
           for i in range(size)]
    inverse = _invert(cov)
    # Wilson-Hilferty 99 % quantile of chi-square with `size` degrees of freedom.
    v = 2.0 / (9.0 * size)
    ucl = size * (1.0 - v + 2.326348 * math.sqrt(v)) ** 3
    alarms = []
    for row in rows:
        d = [row[name] - mean[i] for i, name in enumerate(names)]
        t2 = sum(d[i] * sum(inverse[i][j] * d[j] for j in range(size)) for i in range(size))
        alarms.append(t2 > ucl)
    return alarms


def _invert(matrix: list[list[float]]) -> list[list[float]]:
    size = len(matrix)
    a = [list(row) + [1.0 if i == j else 0.0 for j in range(size)] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda row: abs(a[row][col]))
        a[col], a[pivot] = a[pivot], a[col]
        p = a[col][col]
        a[col] = [value / p for value in a[col]]
        for row in range(size):
            if row != col and a[row][col]:
                factor = a[row][col]
                a[row] = [value - factor * c for value, c in zip(a[row], a[col])]
    return [row[size:] for row in a]


SKAB_ANOMALY_FREE = Path("anomaly-free") / "anomaly-free.csv"


def skab_report(folder: Path, batch_size: int, detector: Detector | None = None) -> list[str]:
    files = sorted((folder / SKAB_TUNE_FOLDER).glob("*.csv")) + sorted((folder / SKAB_HELD_OUT_FOLDER).glob("*.csv"))
    if not files:
        return [f"(no SKAB files under {folder})"]
    totals = {"all": Confusion(), SKAB_TUNE_FOLDER: Confusion(), SKAB_HELD_OUT_FOLDER: Confusion()}
    # Rows labeled normal inside an episode, by the episode's kind (a row can lie in several).
    false_by_kind: dict[str, Counter[str]] = {SKAB_TUNE_FOLDER: Counter(), SKAB_HELD_OUT_FOLDER: Counter()}
    false_by_place: dict[str, Counter[str]] = {SKAB_TUNE_FOLDER: Counter(), SKAB_HELD_OUT_FOLDER: Counter()}
    baseline, everything = Confusion(), Confusion()
    episodes = 0
    for path in files:
        rows, labels = read_skab(path)
        run = replay(f"skab-{path.parent.name}-{path.stem}", shifted_timestamps(len(rows), SKAB_STEP_MS), rows,
                     batch_size, detector)
        episodes += len(run.episodes)
        kinds = covering_kinds(run)[SKAB_TRAINING_ROWS:]
        actual = labels[SKAB_TRAINING_ROWS:]
        file_confusion = Confusion()
        file_confusion.add([bool(row_kinds) for row_kinds in kinds], actual)
        totals["all"] += file_confusion
        totals[path.parent.name] += file_confusion
        for row_kinds, anomalous in zip(kinds, actual):
            if not anomalous:
                false_by_kind[path.parent.name].update(row_kinds)
        false_by_place[path.parent.name] += false_row_places(run, labels, SKAB_TRAINING_ROWS)
        baseline.add(hotelling_baseline(rows)[SKAB_TRAINING_ROWS:], actual)
        everything.add([True] * len(actual), actual)
    lines = [
        f"SKAB: {len(files)} files ({SKAB_TUNE_FOLDER}/ tuned on, {SKAB_HELD_OUT_FOLDER}/ held out), "
        f"point-wise, pooled; {episodes} episodes",
        "",
        "| detector | precision | recall | F1 | FAR | MAR | TP / FP / TN / FN |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        totals["all"].row("this detector, all files"),
        totals[SKAB_TUNE_FOLDER].row(f"this detector, {SKAB_TUNE_FOLDER}/ (tuned on)"),
        totals[SKAB_HELD_OUT_FOLDER].row(f"this detector, {SKAB_HELD_OUT_FOLDER}/ (held out)"),
        baseline.row("Hotelling T-squared, 99 % UCL, fit on the first 400 rows"),
        everything.row("every row anomalous"),
        "",
        "False positive rows by the kind of episode they lie in (a row can lie in several):",
    ]
    for split, counts in false_by_kind.items():
        listed = ", ".join(f"{kind} {count:,}" for kind, count in counts.most_common()) or "none"
        lines.append(f"- {split}/: {listed}")
    anomaly_free = folder / SKAB_ANOMALY_FREE
    if anomaly_free.is_file():
        rows, _ = read_skab(anomaly_free)
        run = replay("skab-anomaly-free", shifted_timestamps(len(rows), SKAB_STEP_MS), rows, batch_size, detector)
        scored = covered_rows(run)[SKAB_TRAINING_ROWS:]
        lines.append(f"- {SKAB_ANOMALY_FREE.as_posix()} (every row normal, not in the table): "
                     f"{100 * sum(scored) / len(scored):.1f} % of its {len(scored):,} scored rows in "
                     f"{len(run.episodes)} episodes")
    lines.append("")
    lines.append("False positive rows by where they lie: after the last labeled row of the episode they are in "
                 "(still away once the labels end), before its first, or in an episode apart from every labeled row:")
    for split, counts in false_by_place.items():
        lines.append(f"- {split}/: " + ", ".join(f"{place} {counts[place]:,}" for place in FALSE_ROW_PLACES))
    return lines


# ---------------------------------------------------------------------------------------------------------------
# NAB: event-level.

def _nab_time(text: str) -> int:
    return int(datetime.fromisoformat(text.strip()).replace(tzinfo=timezone.utc).timestamp() * 1000)


def read_nab(path: Path) -> tuple[list[int], list[float]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        times, values = [], []
        for line in reader:
            times.append(_nab_time(line["timestamp"]))
            values.append(float(line["value"]))
    return times, values


def events_from_flags(flags: list[bool]) -> list[tuple[int, int]]:
    """Consecutive flagged points as (first, last) index ranges, merged when closer than NAB_MERGE_STEPS."""
    events: list[list[int]] = []
    for index, flag in enumerate(flags):
        if not flag:
            continue
        if events and index - events[-1][1] < NAB_MERGE_STEPS:
            events[-1][1] = index
        else:
            events.append([index, index])
    return [(first, last) for first, last in events]


@dataclass
class EventScore:
    events: int
    hits: int
    windows: int
    windows_hit: int

    @property
    def precision(self) -> float:
        return self.hits / self.events if self.events else 0.0

    @property
    def recall(self) -> float:
        return self.windows_hit / self.windows if self.windows else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_events(flags: list[bool], windows: list[tuple[int, int]], first_scored: int) -> EventScore:
    scored = [False] * first_scored + flags[first_scored:]
    events = events_from_flags(scored)
    hits = sum(1 for first, last in events if any(first <= w_last and last >= w_first for w_first, w_last in windows))
    windows_hit = sum(1 for w_first, w_last in windows if any(first <= w_last and last >= w_first
                                                              for first, last in events))
    return EventScore(len(events), hits, len(windows), windows_hit)


def windowed_gaussian(values: list[float]) -> list[bool]:
    window: deque[float] = deque()
    total = total_sq = 0.0
    flags = []
    for value in values:
        if len(window) >= 30:
            mean = total / len(window)
            std = math.sqrt(max(total_sq / len(window) - mean * mean, 0.0))
            flags.append(std > 0 and abs(value - mean) > GAUSSIAN_K * std)
        else:
            flags.append(False)
        window.append(value)
        total += value
        total_sq += value * value
        if len(window) > GAUSSIAN_WINDOW:
            old = window.popleft()
            total -= old
            total_sq -= old * old
    return flags


def nab_report(folder: Path, batch_size: int, detector: Detector | None = None) -> list[str]:
    windows_path = folder / "windows.json"
    if not windows_path.is_file():
        return [f"(no NAB windows.json under {folder})"]
    labeled = json.loads(windows_path.read_text())
    lines = [f"NAB realKnownCause: event-level (alerts closer than {NAB_MERGE_STEPS} steps merge; first "
             f"{NAB_PROBATION:.0%} not scored)", "",
             "| series | split | events | P | R | F1 | points in episodes | windowed Gaussian P / R / F1 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    f1s: dict[str, list[float]] = {"tune": [], "held out": []}
    baseline_f1s: dict[str, list[float]] = {"tune": [], "held out": []}
    for name in NAB_TUNE + NAB_HELD_OUT:
        path = folder / f"{name}.csv"
        if not path.is_file():
            lines.append(f"| {name} | missing | | | | | | |")
            continue
        split = "tune" if name in NAB_TUNE else "held out"
        times, values = read_nab(path)
        steps = [b - a for a, b in zip(times, times[1:]) if b > a]
        step = min(steps)  # a fixed spacing of at most the series' own
        timestamps = shifted_timestamps(len(values), step, times[0])
        run = replay(f"nab-{name.replace('_', '-')}", timestamps, [{"value": v} for v in values], batch_size,
                     detector)
        flags = covered_rows(run)
        windows = []
        for first, last in labeled[f"realKnownCause/{name}.csv"]:
            first_ms, last_ms = _nab_time(first), _nab_time(last)
            inside = [i for i, t in enumerate(times) if first_ms <= t <= last_ms]
            if inside:
                windows.append((inside[0], inside[-1]))
        first_scored = int(len(values) * NAB_PROBATION)
        ours = score_events(flags, windows, first_scored)
        theirs = score_events(windowed_gaussian(values), windows, first_scored)
        coverage = sum(flags[first_scored:]) / max(1, len(values) - first_scored)
        f1s[split].append(ours.f1)
        baseline_f1s[split].append(theirs.f1)
        lines.append(f"| {name} | {split} | {ours.events} | {ours.precision:.3f} | {ours.recall:.3f} | "
                     f"**{ours.f1:.3f}** | {100 * coverage:.1f} % | {theirs.precision:.3f} / {theirs.recall:.3f} / "
                     f"{theirs.f1:.3f} |")
    every = f1s["tune"] + f1s["held out"]
    baseline_every = baseline_f1s["tune"] + baseline_f1s["held out"]
    for label, ours_list, theirs_list in (("mean, all", every, baseline_every),
                                          ("mean, tune", f1s["tune"], baseline_f1s["tune"]),
                                          ("mean, held out", f1s["held out"], baseline_f1s["held out"])):
        if ours_list:
            lines.append(f"| {label} | | | | | **{sum(ours_list) / len(ours_list):.3f}** | | "
                         f"{sum(theirs_list) / len(theirs_list):.3f} |")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Detector alone: speed and state size.

def _random_rows(sensors: int, count: int) -> list[dict[str, float]]:
    """Gaussian noise at different levels and scales, the same for a given number of sensors."""
    import random

    rng = random.Random(sensors)
    names = [f"s{index:02d}" for index in range(sensors)]
    levels = [rng.uniform(-100, 1000) for _ in names]
    return [{name: round(level + rng.gauss(0, 1 + abs(level) / 100), 3) for name, level in zip(names, levels)}
            for _ in range(count)]


def detector_only(readings: int) -> list[str]:
    lines = ["| sensors | readings | Detector.observe readings/s (one core) | state bytes per device |",
             "| --- | --- | --- | --- |"]
    for sensors in (4, 8, 32):
        count = readings if sensors <= 8 else readings // 8
        rows = _random_rows(sensors, count)
        detector = default_detector()
        model = detector.new_model()
        observe = detector.observe
        start_ms = 1_800_000_000_000
        began = time.process_time()
        for index, values in enumerate(rows):
            observe(model, start_ms + index * 1000, values)
        elapsed = time.process_time() - began
        size = len(json.dumps(model.to_state(), allow_nan=False))
        lines.append(f"| {sensors} | {count:,} | **{count / elapsed:,.0f}** | {size:,} |")
    lines += ["", "| sensors | state bytes, 1 s readings for 2,000 s (no weekly profile) | state bytes, 1 min readings "
              "for 3 days (every sensor learning a weekly profile) |", "| --- | --- | --- |"]
    for sensors in (4, 32):
        sizes = []
        for step_ms, count in ((1000, 2000), (60_000, 3 * 1440)):
            detector = default_detector()
            model = detector.new_model()
            for index, values in enumerate(_random_rows(sensors, count)):
                detector.observe(model, 1_800_000_000_000 + index * step_ms, values)
            sizes.append(len(json.dumps(model.to_state(), allow_nan=False)))
        lines.append(f"| {sensors} | {sizes[0]:,} | {sizes[1]:,} |")
    return lines


def _steady_rate(module: ModuleType, rows: list[dict[str, float]]) -> float:
    """Readings/s of one device past its warm-up (the first 1,000 readings untimed)."""
    limits = {name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()}
    detector = module.Detector(limits, DetectorSettings())
    model = detector.new_model()
    for index, values in enumerate(rows[:1000]):
        detector.observe(model, 1_800_000_000_000 + index * 1000, values)
    began = time.process_time()
    for index in range(1000, len(rows)):
        detector.observe(model, 1_800_000_000_000 + index * 1000, rows[index])
    return (len(rows) - 1000) / (time.process_time() - began)


def _fresh_rate(module: ModuleType, rows: list[dict[str, float]]) -> float:
    """Readings/s of 50 new devices of 100 readings each, state written: the batch path on an empty table."""
    limits = {name: (spec.low, spec.high) for name, spec in KNOWN_SENSORS.items()}
    detector = module.Detector(limits, DetectorSettings())
    began = time.process_time()
    for _ in range(50):
        model = detector.new_model()
        for index in range(100):
            detector.observe(model, 1_800_000_000_000 + index * 1000, rows[index])
        json.dumps(model.to_state())
    return 5000 / (time.process_time() - began)


def compare_detectors(baseline: Path, rounds: int) -> list[str]:
    """Detector.observe of `baseline` (another version of handler/detection.py, for example from
    `git show <commit>:handler/detection.py`) against the current one, alternating in one process:
    the best of `rounds` runs each, so a loaded machine slows both alike."""
    import importlib.util

    import handler.detection as current

    spec = importlib.util.spec_from_file_location("baseline_detection", baseline)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline {baseline}: not a Python file")
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    scenarios = [(f"{sensors} sensors, past the warm-up", _steady_rate, _random_rows(sensors, 7000 if sensors <= 8
                                                                                         else 1500))
                 for sensors in (4, 8, 32)]
    scenarios += [(f"{sensors} sensors, fresh devices", _fresh_rate, _random_rows(sensors, 100)) for sensors in (4, 8)]
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for name, rate, rows in scenarios:
            for label, module in (("before", old), ("after", current)):
                best[(name, label)] = max(best.get((name, label), 0.0), rate(module, rows))
    lines = ["| `Detector.observe`, readings/s | before | after | ratio |", "| --- | --- | --- | --- |"]
    for name, _, _ in scenarios:
        before, after = best[(name, "before")], best[(name, "after")]
        lines.append(f"| {name} | {before:,.0f} | {after:,.0f} | {after / before:.2f} |")
    return lines


def setting_value(option: str, text: str) -> tuple[str, object]:
    """One `name=value` override as written on the command line (the value JSON, as in the stack file)."""
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise SettingsError(f"{option} {text!r}: expected name=value")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        raise SettingsError(f"{option} {text!r}: the value must be a number (as in the stack file)") from None


def add_setting_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="override one detector setting (anomalyDetection names), repeatable")


def settings_from_arguments(parser: argparse.ArgumentParser,
                            texts: list[str]) -> tuple[dict[str, object], DetectorSettings]:
    """The --setting overrides as written, and the settings they make (checked by the stack's validator)."""
    overrides: dict[str, object] = {}
    for text in texts:
        try:
            name, value = setting_value("--setting", text)
        except SettingsError as error:
            parser.error(str(error))
        overrides[name] = value
    try:
        return overrides, validate(overrides)
    except DetectorSettingsError as error:
        parser.error(f"--setting: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with skab/ and nab/")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--detector-only", action="store_true", help="time Detector.observe alone, state sizes")
    parser.add_argument("--readings", type=int, default=200_000, help="readings per run of --detector-only")
    parser.add_argument("--baseline", type=Path, help="with --detector-only: another handler/detection.py to "
                        "time against the current one, alternating")
    parser.add_argument("--rounds", type=int, default=7, help="alternations of --baseline")
    add_setting_argument(parser)
    args = parser.parse_args(argv)
    overrides, settings = settings_from_arguments(parser, args.setting)
    detector = default_detector(settings)
    if args.detector_only:
        print("\n".join(compare_detectors(args.baseline, args.rounds) if args.baseline
                        else detector_only(args.readings)))
        return 0
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if not (args.data / "skab").is_dir() and not (args.data / "nab").is_dir():
        print(f"no labeled data at {args.data}: expected skab/ and nab/ there (see the data README), "
              f"or pass --data DIR", file=sys.stderr)
        return 2
    chosen = ", ".join(f"{name}={value}" for name, value in overrides.items()) or "default settings"
    print(f"batches of {args.batch_size} records, state serialised between batches, {chosen}")
    print()
    print("\n".join(skab_report(args.data / "skab", args.batch_size, detector)))
    print()
    print("\n".join(nab_report(args.data / "nab", args.batch_size, detector)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
