"""Replay batches that gave up, from the archive bucket, through the processor.

    python -m operations.replay --bucket <archiveBucketName> --function <processorFunctionName> [--dry-run]
                                [--region <region>]   # default: the --stack file's aws:region
    python -m operations.replay --bucket <bucket> --local --stack dev     # the processor in this process

When a batch exhausts its retries (or its records their maximum age), the event
source mapping writes the invocation record, with the batch's records, to the
archive bucket under `aws/lambda/<mapping uuid>/<shard id>/YYYY/MM/DD/...`
(Lambda's own layout for an S3 on-failure destination). Once the cause is
fixed, this command reads every such object (or those under --prefix) and
sends its records, with their original sequence numbers, to the processor:
the deployed function (`lambda:InvokeFunction`, in chunks under the 6 MB
payload limit), or with --local the handler in this process against the
configured endpoint. The processor is idempotent, so replaying an object twice
changes nothing; objects are left in place as the record of what failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Iterator

import boto3

from handler.layout import LAMBDA_FAILURE_PREFIX
from harness.stack_config import run_command, stack_names, stack_region

# Lambda's synchronous payload limit is 6 MB; leave room for the envelope.
MAX_PAYLOAD_BYTES = 5_000_000
# As the stack's defaults (Pulumi.yaml): the first try and maximumRetryAttempts (5) retries;
# lambdaTimeoutSeconds (120) for a local invocation's deadline.
DEFAULT_ATTEMPTS = 6
DEFAULT_TIMEOUT_S = 120.0

Invoke = Callable[[dict], dict]


class ReplayError(RuntimeError):
    """A failed batch that could not be replayed; the message says which and why."""


def failed_batches(s3, bucket: str, prefix: str) -> Iterator[tuple[str, list[dict]]]:
    """(object key, the batch's Kinesis records) for every invocation record under `prefix`."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            try:
                invocation = json.loads(body)
            except json.JSONDecodeError as error:
                raise ReplayError(f"s3://{bucket}/{entry['Key']} is not an invocation record: {error}") from None
            records = (invocation.get("payload") or {}).get("Records")
            if not isinstance(records, list):
                raise ReplayError(f"s3://{bucket}/{entry['Key']} holds no payload.Records: it is not a Kinesis "
                                  "failure record with its records (was the destination SQS or SNS?)")
            yield entry["Key"], records


def chunks(records: list[dict], limit: int = MAX_PAYLOAD_BYTES) -> Iterator[list[dict]]:
    chunk, size = [], 0
    for record in records:
        record_size = len(json.dumps(record))
        if chunk and size + record_size > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += record_size
    if chunk:
        yield chunk


def replay(s3, bucket: str, prefix: str, invoke: Invoke, dry_run: bool = False, report=print,
           attempts: int = DEFAULT_ATTEMPTS, backoff_s: float = 1.0) -> int:
    """Replay every failed batch under `prefix`; return the number of records sent.

    Bounded like the mapping itself: a chunk the processor reports failed is
    sent again from the reported record, at most `attempts` times in all, with
    doubling pauses; then the replay stops with the reason. The processor's
    writes are conditional and idempotent by reading identity, so this is safe
    while the mapping is live: a reading both deliver is stored once.
    """
    sent = 0
    for key, records in failed_batches(s3, bucket, prefix):
        report(f"{key}: {len(records)} records{' (dry run)' if dry_run else ''}")
        if dry_run:
            continue
        for chunk in chunks(records):
            for attempt in range(1, attempts + 1):
                response = invoke({"Records": chunk})
                failures = response.get("batchItemFailures") or []
                if not failures:
                    break
                failed_from = failures[0]["itemIdentifier"]
                if attempt == attempts:
                    raise ReplayError(f"{key}: the processor still fails from sequence number {failed_from} after "
                                      f"{attempts} attempts; fix the cause and run the replay again (records "
                                      "already stored are not stored twice)")
                report(f"{key}: failed from {failed_from}, attempt {attempt} of {attempts}; retrying from there")
                time.sleep(backoff_s * 2 ** (attempt - 1))
                chunk = _from_record(chunk, failed_from)
            sent += len(chunk)
    return sent


def _from_record(records: list[dict], sequence_number: str) -> list[dict]:
    """The records from the one Lambda would retry from, as the mapping does."""
    for index, record in enumerate(records):
        if (record.get("kinesis") or {}).get("sequenceNumber") == sequence_number:
            return records[index:]
    return records


def lambda_invoker(function_name: str, region: str | None = None) -> Invoke:
    client = boto3.client("lambda", region_name=region)

    def invoke(event: dict) -> dict:
        response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                 Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise ReplayError(f"{function_name} failed: {payload}")
        return payload
    return invoke


def local_invoker(timeout_s: float = DEFAULT_TIMEOUT_S) -> Invoke:
    """The handler in this process, configured from the environment the stack sets, each call
    given the function's timeout as a deadline that really runs down, as in Lambda."""
    from handler import index

    def invoke(event: dict) -> dict:
        ends = time.monotonic() + timeout_s

        class Context:
            function_name = "replay"
            aws_request_id = "replay"

            @staticmethod
            def get_remaining_time_in_millis() -> int:
                return max(0, int((ends - time.monotonic()) * 1000))

        return index.handler(event, Context())
    return invoke


def main(argv: list[str] | None = None) -> int:
    # Missing credentials or region, or what AWS refuses, print one line, not a traceback.
    return run_command("python -m operations.replay", lambda: _replay(argv))


def _replay(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m operations.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="the archive bucket (pulumi stack output archiveBucketName)")
    parser.add_argument("--prefix", default=f"{LAMBDA_FAILURE_PREFIX}/",
                        help="replay only objects under this prefix, e.g. one mapping, shard or day")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="the deployed processor (pulumi stack output processorFunctionName)")
    target.add_argument("--local", action="store_true",
                        help="run the handler in this process (its settings from the environment)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    parser.add_argument("--region", help="the stack's region (default: the --stack file's aws:region)")
    parser.add_argument("--stack", default="dev", choices=stack_names(),
                        help="the stack whose aws:region is the default (default dev)")
    parser.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS,
                        help=f"tries of a chunk the processor reports failed (default {DEFAULT_ATTEMPTS})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"with --local: each invocation's deadline in seconds (default {DEFAULT_TIMEOUT_S:g})")
    args = parser.parse_args(argv)
    if args.attempts < 1 or args.timeout <= 0:
        parser.error("--attempts must be at least 1 and --timeout above 0")
    region = args.region or stack_region(args.stack)
    invoke = local_invoker(args.timeout) if args.local else lambda_invoker(args.function, region)
    try:
        sent = replay(boto3.client("s3", region_name=region), args.bucket, args.prefix, invoke, args.dry_run,
                      attempts=args.attempts)
    except ReplayError as error:
        print(f"replay stopped: {error}", file=sys.stderr)
        return 1
    print(f"replayed {sent} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
