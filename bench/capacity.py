"""Capacity and cost: what a fleet needs and costs a month, this design beside the naive one.

    python -m bench.capacity --devices 1000 --rate 1 [--batch-size 500] [--window 5] [--sensors 4]

From the fleet's shape it derives how the event source mapping batches a
shard's records (shards, batch size, devices and readings per batch), then
MEASURES one steady-state batch of exactly that shape with the real handler
against moto's server: its calls and DynamoDB write units (as the processor
counts them, sized as DynamoDB bills items) and the pure path's CPU time. From
those it derives invocations, Lambda duration, write units, S3 requests and
storage per month, and prices them with the table below. The naive design
(one `put_item` and one `put_object` per reading, in the same function) is
priced from the same traffic. It names the first limit each design reaches.

Latencies of AWS calls are not measured here (moto is not AWS): the duration
model uses the typical figures in AWS_CALL_MS.
"""

from __future__ import annotations

import argparse
import math
import time

from bench.processor import LocalStack, Records

# AWS list prices, on-demand, Asia Pacific (Singapore) ap-southeast-1, USD, as of the date below.
# Written from AWS's public pricing pages as known on that date, not fetched by this tool: check
# them against the AWS Pricing Calculator before deciding anything on them.
PRICES_AS_OF = "2026-12-01"
PRICES = {
    "iot_messages_per_million": 1.20,         # IoT Core messaging, per million messages (up to 5 KB)
    "iot_rules_per_million": 0.18,            # rules triggered + actions executed, per million each
    "kinesis_stream_hour": 0.048,             # on-demand stream, per hour
    "kinesis_in_gb": 0.096,                   # data in, per GB (records rounded up to 1 KB)
    "kinesis_out_gb": 0.048,                  # data retrieved, per GB
    "lambda_gb_second_arm": 0.0000133334,     # arm64 duration
    "lambda_requests_per_million": 0.20,
    "dynamodb_wru_per_million": 0.7125,       # on-demand write request units
    "dynamodb_rru_per_million": 0.1425,       # on-demand read request units
    "dynamodb_storage_gb_month": 0.285,
    "s3_put_per_thousand": 0.005,
    "s3_standard_gb_month": 0.025,
}
# Typical latencies in-region (milliseconds), for the duration model only.
AWS_CALL_MS = {"BatchGetItem": 8, "TransactWriteItems": 15, "PutObject": 25, "GetObject": 12, "PutItem": 6}
# Quotas that bound the designs (AWS defaults, raisable on request where noted).
LIMITS = {
    "kinesis_records_per_shard_s": 1_000,
    "kinesis_records_per_key_s": 1_000,
    "dynamodb_table_wru_s": 40_000,           # on-demand table maximum write throughput (default, raisable)
    "s3_puts_per_prefix_s": 3_500,
    "iot_publishes_per_connection_s": 100,
}
SECONDS_PER_MONTH = 30 * 86_400
LAMBDA_MEMORY_GB = 0.5  # the stack's lambdaMemoryMb default
ON_DEMAND_MIN_SHARDS = 4  # an on-demand stream starts with 4 MiB/s of write capacity


class Shape:
    """How the mapping batches the fleet's records."""

    def __init__(self, devices: int, rate: float, batch_size: int, window_s: float) -> None:
        self.readings_s = devices * rate
        self.shards = max(ON_DEMAND_MIN_SHARDS, math.ceil(self.readings_s / LIMITS["kinesis_records_per_shard_s"]))
        self.shard_rate = self.readings_s / self.shards
        # A batch goes when it is full or when the batching window has passed.
        self.batch = max(1, min(batch_size, round(self.shard_rate * window_s)))
        self.devices_per_shard = max(1, math.ceil(devices / self.shards))
        span_s = self.batch / self.shard_rate
        self.readings_per_device = max(1, round(rate * span_s))
        self.devices_per_batch = max(1, min(self.devices_per_shard, self.batch // self.readings_per_device))
        self.invocations_s = self.readings_s / self.batch


def measure(shape: Shape, sensors: int) -> dict:
    """One steady-state batch of this shape through the real handler on moto: calls, write units, CPU."""
    stack = LocalStack()
    try:
        numbering = Records()
        start = 1_795_081_600_000 - 3_600_000
        step = max(1, int(1000 / max(shape.readings_per_device, 1)))

        def batch(offset_ms: int) -> list[dict]:
            return [numbering.record(f"dev-{d:06d}", start + offset_ms + i * step + d % 7,
                                     {f"s{k}": 20.0 + k + (i + d) % 5 * 0.1 for k in range(sensors)})
                    for i in range(shape.readings_per_device) for d in range(shape.devices_per_batch)]

        stack.clear()
        warm = stack.deliver(batch(0))  # windows and states exist, as in steady operation
        assert warm.failed_from is None, warm.failure
        records = batch(30_000)
        cpu = _pure_cpu(stack, records)
        report = stack.deliver(records)
        assert report.failed_from is None, report.failure
        return {"calls": dict(report.calls.counts), "write_units": report.calls.write_units,
                "largest_item": report.calls.largest_item_bytes, "cpu_s": cpu,
                "readings": shape.readings_per_device * shape.devices_per_batch}
    finally:
        stack.stop()


def _pure_cpu(stack: LocalStack, records: list[dict]) -> float:
    """CPU seconds of the handler's own work on the batch (decode, plan), its stored items read first:
    moto serves in this process, so timing the whole delivery would count the server too."""
    from handler.core import keys_needed, sort_batch
    from handler.records import parse_record
    from handler.storage import Calls, Deadline

    processor = stack.index.PROCESSOR
    batch = sort_batch([parse_record(record) for record in records])
    stored = {(item["device_id"]["S"], item["sk"]["S"]): item for item in processor.table.get(
        keys_needed(batch), Deadline(lambda: 900_000), Calls())}
    started = time.process_time()
    processor.planner.plan(sort_batch([parse_record(record) for record in records]), stored)
    return time.process_time() - started


def _month(per_second: float) -> float:
    return per_second * SECONDS_PER_MONTH


def costs(shape: Shape, measured: dict, record_bytes: int) -> tuple[dict, dict, dict]:
    """(this design, the naive design, quantities) in USD per month."""
    p = PRICES
    readings_month = _month(shape.readings_s)
    shared = {
        "IoT Core": readings_month / 1e6 * (p["iot_messages_per_million"] + 2 * p["iot_rules_per_million"]),
        "Kinesis": (24 * 30 * p["kinesis_stream_hour"]
                    + readings_month * math.ceil(record_bytes / 1024) / 2**20 * (p["kinesis_in_gb"] + p["kinesis_out_gb"])),
        "Lambda requests": _month(shape.invocations_s) / 1e6 * p["lambda_requests_per_million"],
        "S3 storage (a month of raw data)": readings_month * record_bytes / 3 / 2**30 * p["s3_standard_gb_month"],
    }
    per_batch = measured["readings"] / shape.batch  # the measured batch may hold fewer readings than a full one
    calls = {name: count / per_batch for name, count in measured["calls"].items()}
    duration_s = measured["cpu_s"] / per_batch + sum(AWS_CALL_MS.get(n, 10) * c for n, c in calls.items()) / 1000
    ours = dict(shared)
    ours["Lambda duration"] = _month(shape.invocations_s) * duration_s * LAMBDA_MEMORY_GB * p["lambda_gb_second_arm"]
    ours["DynamoDB writes"] = (_month(shape.invocations_s) * measured["write_units"] / per_batch / 1e6
                               * p["dynamodb_wru_per_million"])
    ours["S3 requests"] = _month(shape.invocations_s) * calls.get("PutObject", 0) / 1000 * p["s3_put_per_thousand"]
    naive = dict(shared)
    naive_duration_s = shape.batch * (AWS_CALL_MS["PutItem"] + AWS_CALL_MS["PutObject"]) / 1000
    naive["Lambda duration"] = _month(shape.invocations_s) * naive_duration_s * LAMBDA_MEMORY_GB * p["lambda_gb_second_arm"]
    naive["DynamoDB writes"] = readings_month * math.ceil(record_bytes / 1024) / 1e6 * p["dynamodb_wru_per_million"]
    naive["S3 requests"] = readings_month / 1000 * p["s3_put_per_thousand"]
    quantities = {
        "ours_wru_s": shape.invocations_s * measured["write_units"] / per_batch,
        "ours_puts_s": shape.invocations_s * calls.get("PutObject", 0),
        "ours_duration_s": duration_s,
        "naive_duration_s": naive_duration_s,
        "naive_wru_s": shape.readings_s * math.ceil(record_bytes / 1024),
        "naive_puts_s": shape.readings_s,
    }
    return ours, naive, quantities


def first_limit(shape: Shape, wru_s: float, puts_s: float, duration_s: float, rate: float,
                parallelization: int) -> str:
    """The first quota or bound the design reaches at this traffic, or how far it is from it."""
    # A shard runs `parallelization` batches at a time: each must finish before the next ones fill.
    fill_s = shape.batch / shape.shard_rate
    checks = [
        (rate / LIMITS["iot_publishes_per_connection_s"], "IoT Core's 100 publishes/s per connection"),
        (wru_s / LIMITS["dynamodb_table_wru_s"], "DynamoDB's 40,000 write units/s per on-demand table (raisable)"),
        (puts_s / LIMITS["s3_puts_per_prefix_s"], "S3's 3,500 PUT/s per prefix"),
        (duration_s / fill_s / parallelization,
         f"the function's time per batch against the shard's rate (parallelizationFactor {parallelization})"),
    ]
    load, name = max(checks)
    return f"{name}: at {load:.0%} of it" if load <= 1 else f"{name}: EXCEEDED ({load:.1f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="readings per second per device")
    parser.add_argument("--batch-size", type=int, default=500, help="the stack's batchSize (default 500)")
    parser.add_argument("--window", type=float, default=5, help="the stack's batchingWindowSeconds (default 5)")
    parser.add_argument("--sensors", type=int, default=4)
    parser.add_argument("--parallelization", type=int, default=1, help="the stack's parallelizationFactor (default 1)")
    args = parser.parse_args()
    if args.devices < 1 or args.rate <= 0 or not 1 <= args.batch_size <= 10_000 or args.sensors < 1:
        parser.error("--devices >= 1, --rate > 0, --batch-size 1-10000 and --sensors >= 1")
    shape = Shape(args.devices, args.rate, args.batch_size, args.window)
    record_bytes = 110 + 28 * args.sensors  # the message plus the rule's fields, as JSON
    print(f"{args.devices:,} devices x {args.rate:g} readings/s = {shape.readings_s:,.0f} readings/s; "
          f"{shape.shards} shards ({shape.shard_rate:,.0f} readings/s each); batches of {shape.batch} "
          f"({shape.devices_per_batch} devices x {shape.readings_per_device} readings), "
          f"{shape.invocations_s:,.1f} invocations/s", flush=True)
    measured = measure(shape, args.sensors)
    print(f"measured batch (real handler on moto): calls {measured['calls']}, write units "
          f"{measured['write_units']}, largest item {measured['largest_item']:,} bytes, pure CPU "
          f"{measured['cpu_s'] * 1000:.0f} ms for {measured['readings']} readings")
    ours, naive, quantities = costs(shape, measured, record_bytes)
    print(f"\nmonthly cost, USD (prices of {PRICES_AS_OF}, ap-southeast-1, in bench/capacity.py):")
    print(f"  {'':34} {'this design':>14} {'naive':>14}")
    for name in ours:
        print(f"  {name:34} {ours[name]:14,.2f} {naive[name]:14,.2f}")
    print(f"  {'total':34} {sum(ours.values()):14,.2f} {sum(naive.values()):14,.2f}")
    print(f"\nwrite units/s: this design {quantities['ours_wru_s']:,.0f}, naive {quantities['naive_wru_s']:,.0f}; "
          f"S3 PUT/s: {quantities['ours_puts_s']:,.1f} vs {quantities['naive_puts_s']:,.0f}; "
          f"time per batch: {quantities['ours_duration_s']:.2f} s vs {quantities['naive_duration_s']:.2f} s")
    print("first limit, this design: " + first_limit(shape, quantities["ours_wru_s"], quantities["ours_puts_s"],
                                                      quantities["ours_duration_s"], args.rate, args.parallelization))
    print("first limit, naive:       " + first_limit(shape, quantities["naive_wru_s"], quantities["naive_puts_s"],
                                                      quantities["naive_duration_s"], args.rate, args.parallelization))


if __name__ == "__main__":
    main()
