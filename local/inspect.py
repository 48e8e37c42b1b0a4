"""Look into the metrics table after a local run (or a real stack's).

    .venv/bin/python -m local.inspect --device press-003 [--from 2026-11-25T04:00] [--to 2026-11-25T05:00]
    .venv/bin/python -m local.inspect --device press-003 --snapshot .local-run/<run>   # an earlier run
    .venv/bin/python -m local.inspect --device press-001 --table sensor-metrics-dev [--region eu-west-1]

Without --table it reads the table snapshot of the latest local run
(.local-run/latest/table.jsonl; --snapshot takes a run folder or the file), with
the same key condition a DynamoDB Query uses: one device, sort keys between the
two times, metrics windows and anomaly episodes in time order. With --table it
queries a real stack's table, in --region (default: the --stack file's
aws:region), with the AWS credentials of the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from handler.layout import STATE_SORT_KEY, TABLE_PARTITION_KEY, TABLE_SORT_KEY
from local.runs import LATEST, SNAPSHOT_FILE, default_output
from harness.stack_config import run_command, stack_names, stack_region

# Sort keys start with a UTC ISO time; "~" sorts after every time, before "state".
UPPER_BOUND_SUFFIX = "~"


def _value(attribute: dict):
    kind, value = next(iter(attribute.items()))
    if kind == "N":
        return float(value) if "." in value or "E" in value else int(value)
    if kind == "M":
        return {key: _value(item) for key, item in value.items()}
    if kind == "NS":
        return len(value)
    return value


def query_snapshot(path: Path, device: str, start: str, end: str) -> list[dict]:
    if path.is_dir():
        path = path / SNAPSHOT_FILE
    if not path.exists():
        raise SystemExit(f"python -m local.inspect: no table snapshot at {path}: run ./run-local.sh first, "
                         "pass a run folder with --snapshot, or --table for a real stack")
    items = (json.loads(line) for line in path.read_text().splitlines())
    return sorted((i for i in items if i[TABLE_PARTITION_KEY]["S"] == device
                   and start <= i[TABLE_SORT_KEY]["S"] <= end and i[TABLE_SORT_KEY]["S"] != STATE_SORT_KEY),
                  key=lambda i: i[TABLE_SORT_KEY]["S"])


def query_table(table: str, region: str | None, device: str, start: str, end: str) -> list[dict]:
    import boto3

    paginator = boto3.client("dynamodb", region_name=region).get_paginator("query")
    pages = paginator.paginate(
        TableName=table, KeyConditionExpression="#pk = :device AND #sk BETWEEN :start AND :end",
        ExpressionAttributeNames={"#pk": TABLE_PARTITION_KEY, "#sk": TABLE_SORT_KEY},
        ExpressionAttributeValues={":device": {"S": device}, ":start": {"S": start}, ":end": {"S": end}},
    )
    return [item for page in pages for item in page["Items"]]


def _iso(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_ms / 1000)) + f".{epoch_ms % 1000:03d}Z"


def describe(item: dict) -> str:
    kind = item.get("item_type", {}).get("S")
    if kind == "episode":
        ended = f"ended {_iso(_value(item['ended_at']))}" if "ended_at" in item else "still open"
        return (f"{_iso(_value(item['started_at']))}  EPISODE {item['kind']['S']:12s} {item['scope']['S']:12s} "
                f"sensors {','.join(item['sensors']['SS'])}  {ended}  {_value(item['readings'])} readings  "
                f"peak score {_value(item['peak_score'])}")
    sensors = ", ".join(f"{name} n={stats['count']} min={stats['min']:.2f} mean={stats['mean']:.2f} "
                        f"max={stats['max']:.2f} last={stats['last']:.2f}"
                        for name, stats in sorted(_value(item["sensors"]).items()))
    return f"{item['window_start']['S']}  METRICS {_value(item['reading_count'])} readings: {sensors}"


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m local.inspect", lambda: _inspect(argv))


def _inspect(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.inspect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", required=True, help="device id, e.g. press-003")
    parser.add_argument("--from", dest="start", default="2000", help="UTC ISO time or prefix (default: all)")
    parser.add_argument("--to", dest="end", default="9999", help="UTC ISO time or prefix (default: all)")
    parser.add_argument("--table", help="query this DynamoDB table (a real stack's) instead of the local snapshot")
    parser.add_argument("--region", help="with --table: the table's region (default: the --stack file's aws:region)")
    parser.add_argument("--stack", default="dev", choices=stack_names(),
                        help="with --table: the stack whose aws:region is the default (default dev)")
    parser.add_argument("--snapshot", type=Path, default=default_output() / LATEST,
                        help="a local run's folder or its table.jsonl (default: the latest run)")
    args = parser.parse_args(argv)
    end = args.end + UPPER_BOUND_SUFFIX
    if args.table:
        items = query_table(args.table, args.region or stack_region(args.stack), args.device, args.start, end)
    else:
        items = query_snapshot(args.snapshot, args.device, args.start, end)
    if not items:
        print(f"nothing stored for {args.device} between {args.start} and {args.end}", file=sys.stderr)
        return 1
    for item in items:
        print(describe(item))
    return 0


if __name__ == "__main__":
    sys.exit(main())
