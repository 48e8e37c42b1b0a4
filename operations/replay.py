"""Replay batches that gave up, from the archive bucket, through the processor.

    python -m operations.replay --bucket <archiveBucketName> --function <processorFunctionName> [--dry-run]
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
from typing import Callable, Iterator

import boto3

from handler.layout import LAMBDA_FAILURE_PREFIX

# Lambda's synchronous payload limit is 6 MB; leave room for the envelope.
MAX_PAYLOAD_BYTES = 5_000_000

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


def replay(s3, bucket: str, prefix: str, invoke: Invoke, dry_run: bool = False, report=print) -> int:
    """Replay every failed batch under `prefix`; return the number of records sent."""
    sent = 0
    for key, records in failed_batches(s3, bucket, prefix):
        report(f"{key}: {len(records)} records{' (dry run)' if dry_run else ''}")
        if dry_run:
            continue
        for chunk in chunks(records):
            response = invoke({"Records": chunk})
            failures = response.get("batchItemFailures") or []
            if failures:
                raise ReplayError(f"{key}: the processor still fails from sequence number "
                                  f"{failures[0]['itemIdentifier']}; fix the cause and run the replay again "
                                  "(records already stored are not stored twice)")
            sent += len(chunk)
    return sent


def lambda_invoker(function_name: str) -> Invoke:
    client = boto3.client("lambda")

    def invoke(event: dict) -> dict:
        response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                 Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise ReplayError(f"{function_name} failed: {payload}")
        return payload
    return invoke


def local_invoker() -> Invoke:
    """The handler in this process, configured from the environment the stack sets."""
    from handler import index

    class Context:
        function_name = "replay"
        aws_request_id = "replay"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 900_000

    return lambda event: index.handler(event, Context())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m operations.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="the archive bucket (pulumi stack output archiveBucketName)")
    parser.add_argument("--prefix", default=f"{LAMBDA_FAILURE_PREFIX}/",
                        help="replay only objects under this prefix, e.g. one mapping, shard or day")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="the deployed processor (pulumi stack output processorFunctionName)")
    target.add_argument("--local", action="store_true",
                        help="run the handler in this process (its settings from the environment)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    args = parser.parse_args(argv)
    invoke = local_invoker() if args.local else lambda_invoker(args.function)
    try:
        sent = replay(boto3.client("s3"), args.bucket, args.prefix, invoke, args.dry_run)
    except ReplayError as error:
        print(f"replay stopped: {error}", file=sys.stderr)
        return 1
    print(f"replayed {sent} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
