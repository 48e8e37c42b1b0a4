"""One batch, from Kinesis records to stored windows and episodes: the only place
that decides what is reported back to Lambda as failed.

  1. decode and validate every record (bad ones are kept for quarantine);
  2. read the windows, device states and ledger slots the batch touches;
  3. plan (handler/core.py): what is new, what is a duplicate or a conflict,
     the detector's episodes, the items to write with their conditions;
  4. archive the new readings and quarantine the new bad records under keys
     made of the batch's first record; where such an object exists already (an
     earlier attempt wrote it), take its records into the batch and plan again;
  5. write each device's items in one conditional transaction; a device whose
     condition failed is read and planned again, the others are resent alone.
Any failure reports the batch's first record, so that Lambda's retry starts
there and finds the same archive keys. The consistency model is in
docs/processor.md.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import zlib

from handler import items, layout, quarantine
from handler.core import DevicePlan, Planner, SortedBatch, keys_needed, sort_batch
from handler.detection import Detector
from handler.quarantine import sequence_order
from handler.records import Reading, Rejected, parse_record
from handler.settings import ProcessorSettings
from handler.storage import Archive, Calls, Deadline, MetricsTable, ObjectExists, StorageError

logger = logging.getLogger(__name__)

# Rounds of "the key is taken: take its records and plan again", and of
# "a condition failed: read again and plan again", before the batch is reported.
_ARCHIVE_ROUNDS = 8
_COMMIT_ROUNDS = 4


class BatchReport:
    """What happened to one batch: the counts behind the metrics and the log line."""

    def __init__(self, records: int = 0) -> None:
        self.records = records
        self.readings_stored = 0
        self.duplicates = 0
        self.late = 0
        self.conflicts = 0
        self.quarantined = 0
        self.already_quarantined = 0
        self.quarantine_reasons: dict[str, int] = {}
        self.episodes_opened: dict[str, int] = {}
        self.failed_from: str | None = None
        self.failure: str | None = None
        self.calls = Calls()

    def add(self, plan: DevicePlan) -> None:
        self.readings_stored += len(plan.applied)
        self.duplicates += plan.duplicates
        self.late += plan.late
        self.already_quarantined += plan.already_quarantined
        for rejected in plan.quarantined:
            self.quarantined += 1
            self.quarantine_reasons[rejected.reason] = self.quarantine_reasons.get(rejected.reason, 0) + 1
            self.conflicts += rejected.reason == quarantine.CONFLICT
        for kind, count in plan.episodes_opened.items():
            self.episodes_opened[kind] = self.episodes_opened.get(kind, 0) + count


def _identity(record: Reading | Rejected) -> tuple[str, str]:
    return record.shard_id, record.sequence_number


def _gzip_lines(lines: list[str]) -> bytes:
    # zlib's gzip container (wbits 31) writes a zero mtime: the same lines always
    # give the same bytes, without importing the gzip module at cold start.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(("\n".join(lines) + "\n").encode()) + compressor.flush()


_KINESIS_FIELDS = ("kinesis_shard_id", "kinesis_sequence_number", "kinesis_arrival_ms")


def archive_line(reading: Reading) -> str:
    line = dict(reading.message)
    line["kinesis_shard_id"] = reading.shard_id
    line["kinesis_sequence_number"] = reading.sequence_number
    line["kinesis_arrival_ms"] = reading.arrival_ms
    return json.dumps(line, separators=(",", ":"), sort_keys=True)


def _record(shard_id: str, sequence_number: str, arrival_ms: int, data: bytes) -> dict:
    return {"eventID": f"{shard_id}:{sequence_number}",
            "kinesis": {"sequenceNumber": sequence_number, "approximateArrivalTimestamp": arrival_ms / 1000,
                        "data": base64.b64encode(data).decode()}}


def records_in_object(prefix: str, body: bytes) -> list[Reading | Rejected]:
    """The records an archive or quarantine object holds, decoded as the batch's own records are."""
    records = []
    for text in zlib.decompress(body, 31).decode().splitlines():
        line = json.loads(text)
        if prefix == layout.RAW_PREFIX:
            message = {name: value for name, value in line.items() if name not in _KINESIS_FIELDS}
            records.append(_record(line["kinesis_shard_id"], line["kinesis_sequence_number"],
                                   line["kinesis_arrival_ms"], json.dumps(message, separators=(",", ":")).encode()))
        else:
            records.append(_record(line["shard_id"], line["sequence_number"], line["arrival_ms"],
                                   base64.b64decode(line["data_base64"])))
    return [parse_record(record) for record in records]


class Processor:
    def __init__(self, settings: ProcessorSettings, table: MetricsTable, archive: Archive) -> None:
        self.settings = settings
        self.table = table
        self.archive = archive
        self.planner = Planner(Detector(dict(settings.sensor_limits), settings.detector), settings.ttl_days)

    def process(self, records: list[dict], deadline: Deadline) -> BatchReport:
        report = BatchReport(records=len(records))
        parsed = [parse_record(record) for record in records]
        first = self._first_record(parsed)
        try:
            batch, plans, stored = self._plan_and_archive(parsed, first, deadline, report.calls)
            failed = self._commit(batch, plans, stored, deadline, report)
        except StorageError as error:
            logger.error("batch not stored", extra={"error": str(error)})
            report.failed_from, report.failure = first.sequence_number if first else None, str(error)
            return report
        if failed:
            report.failed_from = first.sequence_number if first else None
            report.failure = "; ".join(f"{owner}: {why}" for owner, why in sorted(failed.items()))[:2000]
            logger.error("writes failed", extra={"owners": sorted(failed), "failure": report.failure})
        return report

    @staticmethod
    def _first_record(parsed: list[Reading | Rejected]) -> Reading | Rejected | None:
        """The batch's first record: the one a retry starts from, and what the archive keys are made of."""
        numbered = [record for record in parsed if record.sequence_number]
        return min(numbered, key=lambda record: sequence_order(record.sequence_number)) if numbered else None

    def _read(self, keys: list[dict], stored: dict, deadline: Deadline, calls: Calls) -> None:
        if keys:
            for item in self.table.get(keys, deadline, calls):
                stored[items.key_of(item)] = item

    def _plan_and_archive(self, parsed: list[Reading | Rejected], first: Reading | Rejected | None, deadline: Deadline,
                          calls: Calls) -> tuple[SortedBatch, list[DevicePlan], dict]:
        """Plan the batch and write its archive objects; the plan covers every record those objects hold."""
        known = {_identity(record) for record in parsed}
        taken_in: list[Reading | Rejected] = []
        archived: dict[str, set] = {layout.RAW_PREFIX: set(), layout.QUARANTINE_PREFIX: set()}
        free_suffix = {layout.RAW_PREFIX: 0, layout.QUARANTINE_PREFIX: 0}
        stored: dict = {}
        read: set = set()
        for _ in range(_ARCHIVE_ROUNDS):
            batch = sort_batch(parsed + taken_in)
            keys = [key for key in keys_needed(batch) if items.key_of(key) not in read]
            self._read(keys, stored, deadline, calls)
            read.update(items.key_of(key) for key in keys)
            plans = self.planner.plan(batch, stored)
            todo: dict[str, list[Reading | Rejected]] = {
                layout.RAW_PREFIX: [r for plan in plans for r in plan.applied
                                    if _identity(r) not in archived[layout.RAW_PREFIX]],
                layout.QUARANTINE_PREFIX: [r for plan in plans for r in plan.quarantined
                                           if _identity(r) not in archived[layout.QUARANTINE_PREFIX]],
            }
            collided = False
            for prefix, records in todo.items():
                if not records:
                    continue
                lines = [archive_line(r) if isinstance(r, Reading) else quarantine.line(r)
                         for r in sorted(records, key=lambda record: sequence_order(record.sequence_number))]
                try:
                    self.archive.put_new(self._object_key(prefix, first, free_suffix[prefix]), _gzip_lines(lines),
                                         deadline, calls)
                    archived[prefix].update(_identity(record) for record in records)
                except ObjectExists:
                    collided = True
                    break
            if not collided:
                return batch, plans, stored
            # An earlier attempt of this batch (or of its first half) got this far: every object it
            # wrote under the first record's keys holds records that are this batch's too.
            for prefix in archived:
                while True:
                    body = self.archive.get(self._object_key(prefix, first, free_suffix[prefix]), deadline, calls)
                    if body is None:
                        break
                    held = records_in_object(prefix, body)
                    archived[prefix].update(_identity(record) for record in held)
                    taken_in += [record for record in held if _identity(record) not in known]
                    known.update(_identity(record) for record in held)
                    free_suffix[prefix] += 1
        origin = first.sequence_number if first else "a batch without sequence numbers"
        raise StorageError(f"archive keys of the batch from {origin} kept colliding")

    @staticmethod
    def _object_key(prefix: str, first: Reading | Rejected | None, suffix: int) -> str:
        shard, sequence, arrival = ((first.shard_id, first.sequence_number, first.arrival_ms) if first
                                    else ("unknown-shard", "none", 0))
        # Partitioned by the arrival hour of the batch's first record, as Firehose does.
        partition = time.strftime(f"{prefix}/dt=%Y-%m-%d/hour=%H", time.gmtime(arrival // 1000))
        return f"{partition}/{shard}-{sequence}{f'-{suffix}' if suffix else ''}.ndjson.gz"

    def _commit(self, batch: SortedBatch, plans: list[DevicePlan], stored: dict, deadline: Deadline,
                report: BatchReport) -> dict[str, str]:
        """Write every plan in per-owner transactions; the owners that could not be written, and why."""
        pending = {plan.device_id: plan for plan in plans}
        failed: dict[str, str] = {}
        for _ in range(_COMMIT_ROUNDS):
            for plan in [plan for plan in pending.values() if not plan.writes]:
                report.add(plan)  # nothing new to write: counted as done
                del pending[plan.device_id]
            if not pending:
                return failed
            outcome = self.table.transact([(owner, plan.writes) for owner, plan in pending.items()], deadline,
                                          report.calls)
            for owner in outcome.committed:
                report.add(pending.pop(owner))
            for owner, why in outcome.refused.items():
                failed[owner] = why
                pending.pop(owner, None)
            if not outcome.replan:
                break
            # Another writer got there first: plan these owners again from what is stored now.
            again = batch.only(outcome.replan)
            fresh: dict = {}
            self._read(keys_needed(again), fresh, deadline, report.calls)
            pending = {plan.device_id: plan for plan in self.planner.plan(again, fresh)}
        for owner in pending:
            failed[owner] = "conditions kept failing: other writers kept changing its items"
        return failed
