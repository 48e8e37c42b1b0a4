"""A small model of the Kinesis event source mapping, to drive the processor the way Lambda does.

What the model does, after Lambda's documentation for Kinesis sources:

- a shard's records are read in sequence order and cut into batches of at most
  `batch_size`;
- with a parallelization factor above 1, records are spread over that many
  lanes by partition key (one key, one lane: per-key order holds); a lane
  sends its next batch only when its previous one is done, while batches of
  different lanes are in flight together and complete in any order;
- a response with `batchItemFailures` makes the mapping retry from the lowest
  reported sequence number (that record and every later one of the batch);
  an identifier that is not in the batch fails the batch whole;
- a function error or a timeout (the invocation returns nothing) retries the
  batch whole, or, with `bisect`, as two halves, each retried the same way;
- after `max_retries` retries a batch is given up: its records go to
  `given_up`, which stands for the on-failure destination (the records
  themselves, as operations.replay reads them back).
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable


class Timeout(BaseException):
    """Lambda's timeout: the invocation stops where it is, and nothing it would have returned arrives.

    Not an Exception, so that no `except Exception` in the handler can catch it.
    """


Invoke = Callable[[list[dict]], dict]


def sequence_number(record: dict) -> str:
    return record["kinesis"]["sequenceNumber"]


@dataclass
class Attempt:
    records: list[dict]
    outcome: str  # "ok", "reported <sequence number>", "error <type>"


@dataclass
class Mapping:
    invoke: Invoke
    batch_size: int = 500
    max_retries: int = 5
    bisect: bool = True
    parallelization: int = 1
    given_up: list[list[dict]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.parallelization <= 10:
            raise ValueError(f"parallelization {self.parallelization}: Lambda allows 1 to 10")
        self._lock = threading.Lock()

    @classmethod
    def like(cls, settings, invoke: Invoke, **overrides) -> "Mapping":
        """A mapping with the batch size, retries and bisection a stack declares (harness.provision.MappingSettings)."""
        values = {"batch_size": settings.batch_size, "max_retries": settings.maximum_retry_attempts,
                  "bisect": settings.bisect_on_error}
        values.update(overrides)
        return cls(invoke, **values)

    # -- one batch -------------------------------------------------------------------------

    def deliver(self, batch: list[dict], retries_left: int | None = None) -> None:
        """Send one batch until it succeeds or is given up."""
        retries_left = self.max_retries if retries_left is None else retries_left
        while batch:
            try:
                response = self.invoke(list(batch))
            except (Exception, Timeout) as error:  # noqa: BLE001 - a function error, as Lambda sees it
                self._log(batch, f"error {type(error).__name__}")
                if retries_left == 0:
                    self._give_up(batch)
                    return
                retries_left -= 1
                if self.bisect and len(batch) > 1:
                    half = len(batch) // 2
                    self.deliver(batch[:half], retries_left)
                    self.deliver(batch[half:], retries_left)
                    return
                continue
            failures = [failure["itemIdentifier"] for failure in response.get("batchItemFailures") or []]
            if not failures:
                self._log(batch, "ok")
                return
            self._log(batch, f"reported {min(failures)}")
            if retries_left == 0:
                self._give_up(batch)
                return
            retries_left -= 1
            positions = [index for index, record in enumerate(batch) if sequence_number(record) in failures]
            batch = batch[min(positions):] if len(positions) == len(failures) else batch

    def _log(self, batch: list[dict], outcome: str) -> None:
        with self._lock:
            self.attempts.append(Attempt(list(batch), outcome))

    def _give_up(self, batch: list[dict]) -> None:
        with self._lock:
            self.given_up.append(list(batch))

    # -- a shard ----------------------------------------------------------------------------

    def lanes(self, records: Iterable[dict]) -> list[list[list[dict]]]:
        """The batches of each lane, in order: records spread by partition key, then cut into batches."""
        by_lane: list[list[dict]] = [[] for _ in range(self.parallelization)]
        for record in sorted(records, key=lambda r: int(sequence_number(r))):
            key = record["kinesis"].get("partitionKey", "")
            by_lane[zlib.crc32(key.encode()) % self.parallelization].append(record)
        return [[lane[start : start + self.batch_size] for start in range(0, len(lane), self.batch_size)]
                for lane in by_lane]

    def run(self, records: Iterable[dict], schedule: Iterable[int] | None = None) -> None:
        """Deliver a shard's records one batch at a time, lanes taken in `schedule` order.

        `schedule` names a lane per step (its next batch is delivered); lanes it
        leaves with batches are then drained in lane order. Without it, round robin.
        """
        lanes = [list(batches) for batches in self.lanes(records)]
        for lane in schedule if schedule is not None else []:
            if lanes[lane]:
                self.deliver(lanes[lane].pop(0))
        while any(lanes):
            for batches in lanes:
                if batches:
                    self.deliver(batches.pop(0))

    def run_concurrently(self, records: Iterable[dict]) -> None:
        """Deliver a shard's records with every lane in its own thread, as Lambda's concurrent batches."""
        errors: list[BaseException] = []

        def drain(batches: list[list[dict]]) -> None:
            try:
                for batch in batches:
                    self.deliver(batch)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(error)

        threads = [threading.Thread(target=drain, args=(batches,), name=f"lane-{lane}")
                   for lane, batches in enumerate(self.lanes(records)) if batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
