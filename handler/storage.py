"""The processor's AWS adapters: the metrics table and the archive bucket.

Clients are created once per container, on first use, so importing the handler
stays cheap and a test can swap the endpoint through AWS_ENDPOINT_URL.

The deadline bounds every call: botocore's own retries are off (one loop here
retries throttling and 5xx with full-jitter backoff), and before each call the
time left, less a margin to respond, picks a client whose connect and read
timeouts fit in it. With too little left no call is made: the caller reports
the batch for retry rather than let Lambda time out in the middle of a write.
"""

from __future__ import annotations

import time

from handler.items import Write, item_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start

if TYPE_CHECKING:
    from typing import Any, Callable, Iterable


# DynamoDB's own limits: AWS rejects larger requests (moto does not).
BATCH_GET_LIMIT = 100
TRANSACTION_ACTIONS_LIMIT = 100
TRANSACTION_BYTES_LIMIT = 4_000_000
_RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "SlowDown", "ConditionalRequestConflict",
    "RequestTimeout", "InternalError", "TransactionInProgressException",
})
# Cancellation reasons that a fresh read and a new plan resolve, or a plain resend.
_REPLAN_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
_RESEND_REASONS = frozenset({"None", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded",
                             "InternalServerError"})
# The version attribute of a window's write (handler/items.py): windows may go ahead of their device's state.
_WINDOW_VERSION = "reading_count"
# Read timeouts (seconds) a call may be given; connect timeouts are at most one second.
_TIMEOUT_TIERS_S = (8.0, 4.0, 2.0, 1.0, 0.5)


class StorageError(RuntimeError):
    """A store refused or kept failing within the time the invocation had."""


class Deadline:
    """The invocation's time budget, keeping a margin to return the response."""

    def __init__(self, remaining_ms: Callable[[], int], margin_ms: int = 1_000) -> None:
        self._remaining_ms = remaining_ms
        self._margin_ms = margin_ms

    def budget_s(self) -> float:
        return (self._remaining_ms() - self._margin_ms) / 1000

    def call_timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts for the next call; StorageError if no call fits any more."""
        budget = self.budget_s()
        for read in _TIMEOUT_TIERS_S:
            connect = min(1.0, read)
            if connect + read <= budget:
                return connect, read
        raise StorageError(f"{max(budget, 0):.1f} s left before the deadline: no call can finish in time")

    def backoff(self, attempt: int, base_s: float = 0.05, cap_s: float = 2.0) -> bool:
        """Sleep before retry `attempt` (full jitter); False if no time is left for it and a call after it."""
        import random  # only a retry needs it; keeps it out of the cold start

        delay = random.uniform(0, min(cap_s, base_s * 2 ** attempt))
        if self.budget_s() - delay < 1.0:
            return False
        time.sleep(delay)
        return True


def _response(error: BaseException | None) -> dict:
    """The parsed error response botocore's ClientError carries; empty for any other error (or none)."""
    return getattr(error, "response", None) or {}


def _error_code(error: BaseException | None) -> str:
    return str(_response(error).get("Error", {}).get("Code", ""))


def _http_status(error: BaseException | None) -> int:
    return int(_response(error).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_timeout(error: Exception) -> bool:
    # botocore's ReadTimeoutError / ConnectTimeoutError / EndpointConnectionError, without importing botocore here.
    return type(error).__name__ in ("ReadTimeoutError", "ConnectTimeoutError", "ConnectTimeoutErrorWithRetries",
                                    "EndpointConnectionError", "ConnectionClosedError")


def _retryable(error: Exception) -> bool:
    return _error_code(error) in _RETRYABLE_CODES or _http_status(error) >= 500 or _is_timeout(error)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Calls:
    """What a batch cost: calls per API and DynamoDB write units."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.write_units = 0
        self.largest_item_bytes = 0

    def count(self, api: str) -> None:
        self.counts[api] = self.counts.get(api, 0) + 1


class _Clients:
    """One boto3 client per service and timeout, made on first use, kept for the container."""

    def __init__(self, service: str, client: Any = None) -> None:
        self._service = service
        self._given = client
        self._made: dict[tuple[float, float], Any] = {}

    def for_call(self, deadline: Deadline) -> Any:
        timeouts = deadline.call_timeout()
        if self._given is not None:
            return self._given
        client = self._made.get(timeouts)
        if client is None:
            import boto3
            from botocore.config import Config

            client = self._made[timeouts] = boto3.client(self._service, config=Config(
                retries={"total_max_attempts": 1}, connect_timeout=timeouts[0], read_timeout=timeouts[1]))
        return client


def _call(clients: _Clients, deadline: Deadline, calls: Calls, api: str, operation: str, what: str,
          **arguments: Any) -> dict:
    """One API call, retried while retryable and time is left; raises StorageError otherwise."""
    attempt = 0
    while True:
        client = clients.for_call(deadline)
        calls.count(api)
        try:
            response: dict = getattr(client, operation)(**arguments)
            return response
        except Exception as error:
            if _error_code(error) == "TransactionCanceledException":
                raise
            if _http_status(error) == 412 or _error_code(error) == "PreconditionFailed":
                raise
            if not _retryable(error) or not deadline.backoff(attempt):
                raise StorageError(f"{what} failed: {error}") from error
            attempt += 1


class TransactionOutcome:
    """Per owner (a device, or a shard's ledger slot): committed, to plan again, or refused with a reason."""

    def __init__(self) -> None:
        self.committed: set[str] = set()
        self.replan: set[str] = set()
        self.refused: dict[str, str] = {}


class MetricsTable:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._clients = _Clients("dynamodb", client)

    def get(self, keys: list[dict], deadline: Deadline, calls: Calls) -> list[dict]:
        """The items that exist among `keys` (BatchGetItem, 100 keys a call, strongly consistent)."""
        found: list[dict] = []
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            pending: dict = {self.table_name: {"Keys": chunk, "ConsistentRead": True}}
            attempt = 0
            while pending:
                response = _call(self._clients, deadline, calls, "BatchGetItem", "batch_get_item",
                                 f"reading {self.table_name}", RequestItems=pending)
                found.extend(response.get("Responses", {}).get(self.table_name, []))
                pending = response.get("UnprocessedKeys") or {}
                if pending and not deadline.backoff(attempt):
                    raise StorageError(f"reading {self.table_name}: keys still unprocessed when time ran out")
                attempt += 1
        return found

    def _action(self, write: Write) -> dict:
        put: dict = {"TableName": self.table_name, "Item": write.item}
        if write.version_attribute is not None:
            if write.expected is None:
                put["ConditionExpression"] = "attribute_not_exists(#key)"
                put["ExpressionAttributeNames"] = {"#key": next(iter(write.item))}
            else:
                put["ConditionExpression"] = "#version = :expected"
                put["ExpressionAttributeNames"] = {"#version": write.version_attribute}
                put["ExpressionAttributeValues"] = {":expected": {"N": str(write.expected)}}
        return {"Put": put}

    @staticmethod
    def pack(groups: list[tuple[str, list[Write]]]) -> list[list[tuple[str, list[Write]]]]:
        """Transactions of at most 100 actions and 4 MB each, in order, ceil(actions/100) of them.

        A group that does not fit in what is left of a transaction fills it
        with its leading windows, which may be written before the rest of their
        device's writes (see docs/processor.md, "Transactions, per device"); its
        episodes and state stay together in the next transaction. A group larger
        than a transaction is cut the same way: windows first, state last.
        """
        transactions: list[list[tuple[str, list[Write]]]] = []
        current: list[tuple[str, list[Write]]] = []
        actions = size = 0
        for owner, writes in groups:
            pending = list(writes)
            while pending:
                room = TRANSACTION_ACTIONS_LIMIT - actions
                if len(pending) <= room:
                    part = pending
                else:
                    windows = 0
                    while windows < room and pending[windows].version_attribute == _WINDOW_VERSION:
                        windows += 1
                    part = pending[:windows] or ([] if current else pending[:TRANSACTION_ACTIONS_LIMIT])
                part_size = sum(item_size(write.item) for write in part)
                if not part or (current and size + part_size > TRANSACTION_BYTES_LIMIT):
                    transactions.append(current)
                    current, actions, size = [], 0, 0
                    continue
                current.append((owner, part))
                actions += len(part)
                size += part_size
                pending = pending[len(part):]
        if current:
            transactions.append(current)
        return transactions

    def transact(self, groups: list[tuple[str, list[Write]]], deadline: Deadline, calls: Calls) -> TransactionOutcome:
        """Write each owner's group all or nothing; say per owner how it went.

        A cancellation names the actions whose condition failed: their owners
        are to be planned again from a fresh read, the others are resent
        without them. A request AWS refuses whole (an item too large, for one)
        is split until the owner it comes from is alone.
        """
        outcome = TransactionOutcome()
        queue = self.pack(groups)
        while queue:
            transaction = queue.pop(0)
            owners = [owner for owner, _ in transaction]
            flat = [(owner, write) for owner, part in transaction for write in part]
            try:
                _call(self._clients, deadline, calls, "TransactWriteItems", "transact_write_items",
                      f"writing {self.table_name}", TransactItems=[self._action(write) for _, write in flat])
            except StorageError as error:
                if _error_code(error.__cause__) == "ValidationException" and len(transaction) > 1:
                    half = len(transaction) // 2
                    queue[:0] = [transaction[:half], transaction[half:]]
                    continue
                for owner in owners:
                    outcome.refused[owner] = str(error)
                # Nothing after this can be written in time or at all: the rest is reported too.
                if _error_code(error.__cause__) != "ValidationException":
                    for rest in queue:
                        for owner, _ in rest:
                            outcome.refused[owner] = str(error)
                    queue = []
                continue
            except Exception as error:
                if _error_code(error) != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in _response(error).get("CancellationReasons", [])]
                replan = {owner for (owner, _), code in zip(flat, reasons) if code in _REPLAN_REASONS}
                refused = {owner: code for (owner, _), code in zip(flat, reasons)
                           if code not in _REPLAN_REASONS and code not in _RESEND_REASONS}
                if not reasons:  # no reasons given: every owner is planned again
                    replan = set(owners)
                outcome.replan |= replan
                for owner, code in refused.items():
                    outcome.refused[owner] = f"{self.table_name} refused the write: {code}"
                # Their later parts (a group cut over transactions) belong to a plan that no longer holds.
                queue = [kept for kept in ([(owner, part) for owner, part in rest
                                            if owner not in replan and owner not in refused] for rest in queue) if kept]
                resend = [(owner, part) for owner, part in transaction if owner not in replan and owner not in refused]
                if resend and deadline.backoff(0):
                    queue.insert(0, resend)
                else:
                    for owner, _ in resend:
                        outcome.refused[owner] = "transaction cancelled and no time left to resend it"
                continue
            for _, write in flat:
                size = item_size(write.item)
                calls.write_units += 2 * -(-size // 1024)  # transactional writes cost twice, per started KB
                calls.largest_item_bytes = max(calls.largest_item_bytes, size)
            outcome.committed |= set(owners)
        outcome.committed -= set(outcome.refused) | outcome.replan
        return outcome


class ObjectExists(Exception):
    """The key is taken: an earlier delivery wrote it."""


class Archive:
    def __init__(self, bucket_name: str, client: Any = None) -> None:
        self.bucket_name = bucket_name
        self._clients = _Clients("s3", client)

    def put_new(self, key: str, body: bytes, deadline: Deadline, calls: Calls) -> None:
        """Create `key`; ObjectExists if it is already there (If-None-Match: *).

        Encryption is the bucket's default (the stack's key, with a bucket key).
        """
        try:
            _call(self._clients, deadline, calls, "PutObject", "put_object", f"writing s3://{self.bucket_name}/{key}",
                  Bucket=self.bucket_name, Key=key, Body=body, IfNoneMatch="*",
                  ContentType="application/x-ndjson", ContentEncoding="gzip")
        except StorageError:
            raise
        except Exception as error:
            if _http_status(error) == 412 or _error_code(error) == "PreconditionFailed":
                raise ObjectExists(key) from None
            raise

    def get(self, key: str, deadline: Deadline, calls: Calls) -> bytes | None:
        """The object's bytes, or None if there is no such key."""
        try:
            response = _call(self._clients, deadline, calls, "GetObject", "get_object",
                             f"reading s3://{self.bucket_name}/{key}", Bucket=self.bucket_name, Key=key)
        except StorageError as error:
            if _error_code(error.__cause__) in ("NoSuchKey", "404") or _http_status(error.__cause__) == 404:
                return None
            raise
        body: bytes = response["Body"].read()
        return body
