"""The processor's AWS adapters: the metrics table and the archive bucket.

Clients are created once per container, on first use, so importing the handler
stays cheap and a test can swap the endpoint through AWS_ENDPOINT_URL. Every
retry is bounded by the invocation's remaining time: a call that cannot finish
in time is reported as failed, never left half-done behind a timeout.
"""

from __future__ import annotations

import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

# DynamoDB's own limits: AWS rejects larger requests (moto does not).
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "SlowDown", "ConditionalRequestConflict",
    "RequestTimeout", "InternalError",
})


class StorageError(RuntimeError):
    """A store refused or kept failing within the time the invocation had."""


class Deadline:
    """The invocation's time budget, keeping a margin to return the response."""

    def __init__(self, remaining_ms: Callable[[], int], margin_ms: int = 2_000) -> None:
        self._remaining_ms = remaining_ms
        self._margin_ms = margin_ms

    def backoff(self, attempt: int, base_s: float = 0.05, cap_s: float = 2.0) -> bool:
        """Sleep before retry `attempt` (full jitter); False if no time is left for it."""
        import random  # only a retry needs it; keeps it out of the cold start

        delay = random.uniform(0, min(cap_s, base_s * 2 ** attempt))
        if self._remaining_ms() - self._margin_ms < delay * 1000:
            return False
        time.sleep(delay)
        return True


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _http_status(error: Exception) -> int:
    response = getattr(error, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _LazyClient:
    """One boto3 client per container, made on first use."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None

    def get(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                self._service,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10),
            )
        return self._client


class MetricsTable:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = _LazyClient("dynamodb") if client is None else None
        self._given_client = client

    @property
    def client(self) -> Any:
        return self._given_client if self._given_client is not None else self._client.get()

    def get(self, keys: list[dict], deadline: Deadline) -> list[dict]:
        """The items that exist among `keys` (BatchGetItem, 100 keys a call)."""
        found: list[dict] = []
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            pending: dict = {self.table_name: {"Keys": chunk, "ConsistentRead": True}}
            attempt = 0
            while pending:
                try:
                    response = self.client.batch_get_item(RequestItems=pending)
                except Exception as error:  # noqa: BLE001 - classified below
                    if _error_code(error) not in _RETRYABLE_CODES or not deadline.backoff(attempt):
                        raise StorageError(f"reading {self.table_name} failed: {error}") from error
                    attempt += 1
                    continue
                found.extend(response.get("Responses", {}).get(self.table_name, []))
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    if not deadline.backoff(attempt):
                        raise StorageError(f"reading {self.table_name}: keys still unprocessed when time ran out")
                    attempt += 1
        return found

    def write(self, items: list[dict], deadline: Deadline) -> list[dict]:
        """Put `items` (BatchWriteItem, 25 a call); return the ones that could not be written."""
        failed: list[dict] = []
        for chunk in _chunks(items, BATCH_WRITE_LIMIT):
            pending = [{"PutRequest": {"Item": item}} for item in chunk]
            attempt = 0
            while pending:
                try:
                    response = self.client.batch_write_item(RequestItems={self.table_name: pending})
                except Exception as error:  # noqa: BLE001 - classified below
                    if _error_code(error) in _RETRYABLE_CODES and deadline.backoff(attempt):
                        attempt += 1
                        continue
                    failed.extend(request["PutRequest"]["Item"] for request in pending)
                    break
                pending = (response.get("UnprocessedItems") or {}).get(self.table_name, [])
                if pending and not deadline.backoff(attempt):
                    failed.extend(request["PutRequest"]["Item"] for request in pending)
                    break
                attempt += 1
        return failed


class Archive:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self.bucket_name = bucket_name
        self._client = _LazyClient("s3") if client is None else None
        self._given_client = client

    @property
    def client(self) -> Any:
        return self._given_client if self._given_client is not None else self._client.get()

    def put_once(self, key: str, body: bytes, deadline: Deadline) -> bool:
        """Create `key` unless it exists; True if written now, False if it was already there.

        Keys are derived from the records, so an existing object holds this
        same content from an earlier delivery: If-None-Match keeps it as it is.
        Encryption is the bucket's default (the stack's key, with a bucket key).
        """
        attempt = 0
        while True:
            try:
                self.client.put_object(
                    Bucket=self.bucket_name, Key=key, Body=body, IfNoneMatch="*",
                    ContentType="application/x-ndjson", ContentEncoding="gzip",
                )
                return True
            except Exception as error:  # noqa: BLE001 - classified below
                if _http_status(error) == 412 or _error_code(error) == "PreconditionFailed":
                    return False
                if _error_code(error) in _RETRYABLE_CODES or _http_status(error) >= 500:
                    if deadline.backoff(attempt):
                        attempt += 1
                        continue
                raise StorageError(f"writing s3://{self.bucket_name}/{key} failed: {error}") from error
