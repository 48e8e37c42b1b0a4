"""The event source mapping's on-failure destination, locally: the archive bucket.

Like the real mapping with an S3 destination, a batch that gives up is written
as Lambda's invocation record, with the records themselves, under
`aws/lambda/<mapping uuid>/<shard id>/YYYY/MM/DD/<time>-<uuid>`, where
`python -m operations.replay` finds it. moto's store ends with the run, so
each record is also kept under the run's output folder at the same key.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from handler.layout import LAMBDA_FAILURE_PREFIX


class ArchiveFailureDestination:
    def __init__(self, s3, bucket: str, mapping_uuid: str, function_arn: str, stream_arn: str,
                 output_dir: Path) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.mapping_uuid = mapping_uuid
        self.function_arn = function_arn
        self.stream_arn = stream_arn
        self.output_dir = output_dir
        self.keys: list[str] = []
        # What the failed records were, counted once each: a duplicate and its original are one reading.
        self.distinct_records: set = set()
        self._lock = threading.Lock()

    def __call__(self, shard_id: str, records: list[dict], condition: str) -> None:
        now = datetime.now(timezone.utc)
        key = (f"{LAMBDA_FAILURE_PREFIX}/{self.mapping_uuid}/{shard_id}/{now:%Y/%m/%d}/"
               f"{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}")
        arrivals = [record["kinesis"]["approximateArrivalTimestamp"] for record in records]
        body = json.dumps({
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_arn,
                               "condition": condition, "approximateInvokeCount": 1},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["kinesis"]["sequenceNumber"],
                "endSequenceNumber": records[-1]["kinesis"]["sequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(min(arrivals)),
                "approximateArrivalOfLastRecord": _iso(max(arrivals)),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            "payload": {"Records": records},
        }).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        copy = self.output_dir / key
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(body)
        with self._lock:
            self.keys.append(key)
            self.distinct_records.update(_identity(record) for record in records)


def _identity(record: dict) -> tuple | str:
    """A reading's identity (device id, device timestamp); for anything else, its bytes."""
    data = record["kinesis"]["data"]
    try:
        message = json.loads(base64.b64decode(data))
        return (message["device_id"], message["timestamp"])
    except (ValueError, KeyError, TypeError):
        return data


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
