"""One batch, from Kinesis records to stored metrics: the only place that decides
what is reported back to Lambda as failed.

Order of work, so that nothing is reported processed before it is stored:
  1. decode and validate every record (bad ones are kept for quarantine);
  2. read the windows, detector states and quarantine ledgers the batch touches;
  3. keep only what is new: readings whose timestamp their window has not seen,
     bad records past their shard's ledger and not already kept (handler/quarantine.py);
  4. detect anomalies in time order per device, aggregate into windows;
  5. write the raw archive and the quarantine objects (deterministic keys);
  6. write windows and anomalies, then detector states and ledgers.
A persistent failure in any step is reported from the first sequence number it
affects, so Lambda retries from there, and the retry finds the rest already
stored. See docs/processor.md.
"""

from __future__ import annotations

import json
import zlib
import logging
import time

from handler import items, layout, quarantine
from handler.aggregation import Window, window_start
from handler.detection import Anomaly, Detector, DeviceState
from handler.quarantine import sequence_order as _sequence_order
from handler.records import Reading, Rejected, parse_record
from handler.settings import ProcessorSettings
from handler.storage import Archive, Deadline, MetricsTable, StorageError

logger = logging.getLogger(__name__)


class BatchReport:
    """What happened to one batch: the counts behind the metrics and log line."""

    def __init__(self, records: int = 0) -> None:
        self.records = records
        self.readings_stored = 0
        self.duplicates = 0
        self.quarantined = 0
        self.already_quarantined = 0
        self.quarantine_reasons: dict[str, int] = {}
        self.anomalies: dict[str, int] = {}
        self.failed_from: str | None = None
        self.failure: str | None = None


def _timestamp_of(reading: Reading) -> int:
    return reading.timestamp_ms


def _first(sequence_numbers) -> str | None:
    numbers = [s for s in sequence_numbers if s]
    return min(numbers, key=_sequence_order) if numbers else None


def _hour_partition(prefix: str, arrival_ms: int) -> str:
    # Partitioned by the batch's arrival hour, as Firehose does: one object per batch.
    return time.strftime(f"{prefix}/dt=%Y-%m-%d/hour=%H", time.gmtime(arrival_ms // 1000))


def _object_key(prefix: str, records: list) -> str:
    ordered = sorted(records, key=lambda record: _sequence_order(record.sequence_number))
    first, last = ordered[0], ordered[-1]
    return (f"{_hour_partition(prefix, first.arrival_ms)}/"
            f"{first.shard_id}-{first.sequence_number}-{last.sequence_number}.ndjson.gz")


def _gzip_lines(lines: list[str]) -> bytes:
    # zlib's gzip container (wbits 31) writes a zero mtime: the same lines always
    # give the same bytes, without importing the gzip module at cold start.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(("\n".join(lines) + "\n").encode()) + compressor.flush()


def _archive_line(reading: Reading) -> str:
    line = dict(reading.message)
    line["kinesis_shard_id"] = reading.shard_id
    line["kinesis_sequence_number"] = reading.sequence_number
    line["kinesis_arrival_ms"] = reading.arrival_ms
    return json.dumps(line, separators=(",", ":"), sort_keys=True)


class Processor:
    def __init__(self, settings: ProcessorSettings, table: MetricsTable, archive: Archive) -> None:
        self.settings = settings
        self.table = table
        self.archive = archive
        self.detector = Detector(dict(settings.sensor_limits), settings.detector)

    def process(self, records: list, deadline: Deadline) -> BatchReport:
        report = BatchReport(records=len(records))
        parsed = [parse_record(record) for record in records]
        readings = [p for p in parsed if isinstance(p, Reading)]
        rejected = [p for p in parsed if isinstance(p, Rejected)]
        unique = self._drop_repeats_within_batch(readings, report)
        try:
            windows, states, ledgers = self._load(unique, rejected, deadline)
        except StorageError as error:
            return self._failed(report, _first(getattr(r, "sequence_number", "") for r in parsed), str(error))

        new_readings = [r for r in unique if windows[(r.device_id, window_start(r.timestamp_ms))].add(
            r.timestamp_ms, r.values)]
        report.duplicates += len(unique) - len(new_readings)
        fresh, replayed, repeated = quarantine.select(rejected, ledgers)
        report.already_quarantined = replayed + repeated
        new_rejected = [record for record, _ in fresh]
        anomalies, observed = self._detect(unique, {id(r) for r in new_readings}, states)
        failures: list[str] = []

        if new_rejected and not self._put(self._quarantine_object(new_rejected), deadline, report):
            failures.append(_first(r.sequence_number for r in new_rejected))
            fresh, new_rejected = [], []
        ledger_writes = [items.ledger_item(shard, ledger, self.settings.ttl_days)
                         for shard, ledger in sorted(quarantine.advanced(ledgers, fresh).items())]
        if new_readings and not self._put(self._raw_object(new_readings), deadline, report):
            # Nothing of these readings may reach the table before the archive holds them.
            failures.append(_first(r.sequence_number for r in new_readings + list(observed.values())))
            return self._finish(report, failures, stored=0, quarantined=new_rejected, anomalies=[],
                                states={}, deadline=deadline, ledger_writes=ledger_writes)

        failed_devices = self._write_windows_and_anomalies(windows, new_readings, anomalies, deadline, failures)
        stored = sum(1 for r in new_readings if r.device_id not in failed_devices)
        states_to_write = {d: s for d, s in states.items() if d in observed and d not in failed_devices}
        for device_id in failed_devices:
            failures.append(observed[device_id].sequence_number if device_id in observed else None)
        return self._finish(report, failures, stored=stored, quarantined=new_rejected,
                            anomalies=[a for a in anomalies if a.device_id not in failed_devices],
                            states=states_to_write, deadline=deadline, ledger_writes=ledger_writes,
                            first_observed=observed)

    # -- steps -------------------------------------------------------------

    @staticmethod
    def _drop_repeats_within_batch(readings: list[Reading], report: BatchReport) -> list[Reading]:
        seen: set[tuple[str, int]] = set()
        unique = []
        for reading in readings:
            identity = (reading.device_id, reading.timestamp_ms)
            if identity in seen:
                report.duplicates += 1
                continue
            seen.add(identity)
            unique.append(reading)
        return unique

    def _load(self, readings: list[Reading], rejected: list[Rejected], deadline: Deadline):
        window_ids = {(r.device_id, window_start(r.timestamp_ms)) for r in readings}
        devices = {r.device_id for r in readings}
        shards = {r.shard_id for r in rejected}
        keys = ([items.window_key(d, start) for d, start in sorted(window_ids)]
                + [items.state_key(d) for d in sorted(devices)]
                + [items.ledger_key(s) for s in sorted(shards)])
        found = {}
        if keys:
            for item in self.table.get(keys, deadline):
                found[(item[layout.TABLE_PARTITION_KEY]["S"], item[layout.TABLE_SORT_KEY]["S"])] = item

        def stored(key: dict):
            return found.get((key[layout.TABLE_PARTITION_KEY]["S"], key[layout.TABLE_SORT_KEY]["S"]))

        windows = {}
        for device_id, start in window_ids:
            item = stored(items.window_key(device_id, start))
            windows[(device_id, start)] = items.parse_window(item, start) if item else Window(start_ms=start)
        states = {d: items.parse_state(stored(items.state_key(d))) for d in devices}
        ledgers = {s: items.parse_ledger(stored(items.ledger_key(s))) for s in shards}
        return windows, states, ledgers

    def _detect(self, readings: list[Reading], new_ids: set[int], states: dict[str, DeviceState]):
        """Anomalies of the batch, and per device the first reading that moved its detector.

        A reading newer than the device's stored state goes through the model
        (even if its window already holds it: an earlier attempt stored the
        window but not the state). An older reading, new to its window, only
        meets the hard limits: the model has moved past its time.
        """
        by_device: dict[str, list[Reading]] = {}
        observed: dict[str, Reading] = {}
        for reading in readings:  # batch order is sequence order: the first seen is the first to retry from
            device_id = reading.device_id
            by_device.setdefault(device_id, []).append(reading)
            if device_id not in observed and reading.timestamp_ms > states[device_id].last_timestamp_ms:
                observed[device_id] = reading
        anomalies: list[Anomaly] = []
        observe, check_limits = self.detector.observe, self.detector.check_limits
        for device_id, device_readings in by_device.items():
            state = states[device_id]
            detected_until = state.last_timestamp_ms
            device_readings.sort(key=_timestamp_of)
            for reading in device_readings:
                if reading.timestamp_ms > detected_until:
                    observe(state, device_id, reading.timestamp_ms, reading.values, reading.sequence_number,
                            anomalies)
                elif id(reading) in new_ids:
                    check_limits(device_id, reading.timestamp_ms, reading.values, reading.sequence_number, anomalies)
        return anomalies, observed

    def _raw_object(self, readings: list[Reading]) -> tuple[str, bytes]:
        ordered = sorted(readings, key=lambda r: _sequence_order(r.sequence_number))
        return _object_key(layout.RAW_PREFIX, ordered), _gzip_lines([_archive_line(r) for r in ordered])

    def _quarantine_object(self, rejected: list[Rejected]) -> tuple[str, bytes]:
        ordered = sorted(rejected, key=lambda r: _sequence_order(r.sequence_number))
        return _object_key(layout.QUARANTINE_PREFIX, ordered), _gzip_lines([quarantine.line(r) for r in ordered])

    def _put(self, key_and_body: tuple[str, bytes], deadline: Deadline, report: BatchReport) -> bool:
        key, body = key_and_body
        try:
            self.archive.put_once(key, body, deadline)
            return True
        except StorageError as error:
            report.failure = str(error)
            logger.error("archive write failed", extra={"s3_key": key, "error": str(error)})
            return False

    def _write_windows_and_anomalies(self, windows: dict, new_readings: list[Reading], anomalies: list[Anomaly],
                                     deadline: Deadline, failures: list) -> set[str]:
        ttl = self.settings.ttl_days
        to_write = [(device_id, items.window_item(device_id, window, ttl))
                    for (device_id, _), window in sorted(windows.items()) if window.changed]
        to_write += [(a.device_id, items.anomaly_item(a, ttl)) for a in anomalies]
        if not to_write:
            return set()
        failed_items = self.table.write([item for _, item in to_write], deadline)
        if not failed_items:
            return set()
        failed_keys = {(i[layout.TABLE_PARTITION_KEY]["S"], i[layout.TABLE_SORT_KEY]["S"]) for i in failed_items}
        failed_devices = {device_id for device_id, item in to_write
                          if (device_id, item[layout.TABLE_SORT_KEY]["S"]) in failed_keys}
        failures.append(_first(r.sequence_number for r in new_readings if r.device_id in failed_devices))
        logger.error("metric writes failed", extra={"devices": sorted(failed_devices), "items": len(failed_items)})
        return failed_devices

    def _finish(self, report: BatchReport, failures: list, *, stored: int, quarantined: list[Rejected],
                anomalies: list[Anomaly], states: dict[str, DeviceState], deadline: Deadline,
                ledger_writes: list[dict], first_observed: dict[str, Reading] | None = None) -> BatchReport:
        ttl = self.settings.ttl_days
        last_writes = [items.state_item(d, s, ttl) for d, s in sorted(states.items())] + ledger_writes
        for item in self.table.write(last_writes, deadline) if last_writes else []:
            partition = item[layout.TABLE_PARTITION_KEY]["S"]
            if partition.startswith(items.SHARD_PARTITION_PREFIX):
                shard = partition[len(items.SHARD_PARTITION_PREFIX):]
                failures.append(_first(r.sequence_number for r in quarantined if r.shard_id == shard))
            elif first_observed and partition in first_observed:
                failures.append(first_observed[partition].sequence_number)
        report.readings_stored = stored
        report.quarantined = len(quarantined)
        for rejected in quarantined:
            report.quarantine_reasons[rejected.reason] = report.quarantine_reasons.get(rejected.reason, 0) + 1
        for anomaly in anomalies:
            report.anomalies[anomaly.kind] = report.anomalies.get(anomaly.kind, 0) + 1
        report.failed_from = _first(f for f in failures if f)
        return report

    @staticmethod
    def _failed(report: BatchReport, first_sequence: str | None, reason: str) -> BatchReport:
        report.failed_from = first_sequence
        report.failure = reason
        return report
