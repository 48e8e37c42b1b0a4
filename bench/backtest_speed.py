"""Backtest speed: a CSV replayed through the handler's path, rows per second of CPU time, and where it goes.

    python -m bench.backtest_speed FILE.csv [--repeat 5] [--stack dev]

The file is read once (timed apart), then replayed --repeat times as
`python -m local.backtest` replays it (`local.backtest.replay`: the rule's
records, `run_in_memory` in batches of the stack's batch size, state through
the table), alternating with the same replay with a detector that observes
nothing (`bench.processor.NoDetector`), so the detector's share is measured
in the same minutes. Medians of CPU time (one core); wall time on a shared
machine also counts other processes' turns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.detection_real import SKAB_COLUMNS
from bench.processor import NoDetector
from handler.core import Planner
from local.backtest import Replay, replay, run_config
from local.csv_series import ReadOptions, read_series


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest_speed")
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stack", help="the stack whose batchSize and settings to use (default: Pulumi.yaml's)")
    args = parser.parse_args()
    started = time.process_time()
    series = read_series(args.file, ReadOptions(known_columns=SKAB_COLUMNS))
    read_s = time.process_time() - started
    rows = len(series)
    config = run_config(args.stack, [], [])
    detector = config.planner.detector
    planners = {"detector": config.planner,
                "no detector": Planner(NoDetector(detector.limits, detector.settings), config.planner.ttl_days)}
    runs: dict[str, list[Replay]] = {name: [] for name in planners}
    for _ in range(args.repeat):
        for name, planner in planners.items():
            config.planner = planner
            runs[name].append(replay(series, config))
    print(f"{args.file}: {rows:,} rows, {len(series.sensors)} sensors, {len(series.devices)} device(s), batches of "
          f"{config.batch_size}; reading the file {read_s:.3f} s CPU ({rows / read_s:,.0f} rows/s)")
    for name, replays in runs.items():
        cpu = statistics.median(run.cpu_s for run in replays)
        records = statistics.median(run.records_cpu_s for run in replays)
        wall = statistics.median(run.elapsed_s for run in replays)
        print(f"replay, {name}: CPU median {cpu:.3f} s = {rows / cpu:,.0f} rows/s (wall {rows / wall:,.0f} rows/s; "
              f"the rule's records {records:.3f} s, the handler's path {cpu - records:.3f} s; {args.repeat} runs); "
              f"with reading the file {rows / (cpu + read_s):,.0f} rows/s")
    full = statistics.median(run.cpu_s for run in runs["detector"])
    bare = statistics.median(run.cpu_s for run in runs["no detector"])
    print(f"the detector's share of the replay: {1 - bare / full:.0%} ({full - bare:.3f} s)")


if __name__ == "__main__":
    main()
