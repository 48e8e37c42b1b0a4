"""Look into the metrics table after a local run (or a real stack's).

    python -m local.inspect --device press-003 [--from 2026-11-25T04:00] [--to 2026-11-25T05:00]
    python -m local.inspect --device press-001 --table sensor-metrics-dev   # a real stack, with AWS credentials

Without --table it reads the snapshot the local run saved (.local-run/table.jsonl),
with the same key condition a DynamoDB Query uses: one device, sort keys
between the two times, metrics windows and anomalies in time order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from handler.layout import STATE_SORT_KEY, TABLE_PARTITION_KEY, TABLE_SORT_KEY
from offline.stack_config import PROJECT_DIR

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
    if not path.exists():
        raise SystemExit(f"no snapshot at {path}: run ./run-local.sh first, or pass --table for a real stack")
    items = (json.loads(line) for line in path.read_text().splitlines())
    return sorted((i for i in items if i[TABLE_PARTITION_KEY]["S"] == device
                   and start <= i[TABLE_SORT_KEY]["S"] <= end and i[TABLE_SORT_KEY]["S"] != STATE_SORT_KEY),
                  key=lambda i: i[TABLE_SORT_KEY]["S"])


def query_table(table: str, device: str, start: str, end: str) -> list[dict]:
    import boto3

    paginator = boto3.client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=table, KeyConditionExpression="#pk = :device AND #sk BETWEEN :start AND :end",
        ExpressionAttributeNames={"#pk": TABLE_PARTITION_KEY, "#sk": TABLE_SORT_KEY},
        ExpressionAttributeValues={":device": {"S": device}, ":start": {"S": start}, ":end": {"S": end}},
    )
    return [item for page in pages for item in page["Items"]]


def describe(item: dict) -> str:
    kind = item.get("item_type", {}).get("S")
    if kind == "anomaly":
        return (f"{item['timestamp']['S']}  ANOMALY {item['kind']['S']:6s} {item['sensor']['S']:12s} "
                f"value {_value(item['value'])}  expected {_value(item['expected_low']):.3f}.."
                f"{_value(item['expected_high']):.3f}  score {_value(item['score'])}")
    sensors = ", ".join(f"{name} n={stats['count']} min={stats['min']:.2f} mean={stats['mean']:.2f} "
                        f"max={stats['max']:.2f} last={stats['last']:.2f}"
                        for name, stats in sorted(_value(item["sensors"]).items()))
    return f"{item['window_start']['S']}  METRICS {_value(item['reading_count'])} readings: {sensors}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.inspect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", required=True, help="device id, e.g. press-003")
    parser.add_argument("--from", dest="start", default="2000", help="UTC ISO time or prefix (default: all)")
    parser.add_argument("--to", dest="end", default="9999", help="UTC ISO time or prefix (default: all)")
    parser.add_argument("--table", help="query this DynamoDB table instead of the local snapshot")
    parser.add_argument("--snapshot", type=Path, default=PROJECT_DIR / ".local-run" / "table.jsonl")
    args = parser.parse_args(argv)
    end = args.end + UPPER_BOUND_SUFFIX
    items = (query_table(args.table, args.device, args.start, end) if args.table
             else query_snapshot(args.snapshot, args.device, args.start, end))
    if not items:
        print(f"nothing stored for {args.device} between {args.start} and {args.end}", file=sys.stderr)
        return 1
    for item in items:
        print(describe(item))
    return 0


if __name__ == "__main__":
    sys.exit(main())
