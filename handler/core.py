"""One batch's plan, pure: from decoded records and the items they touch to what must be written.

The handler (handler/processor.py) sorts the batch (`sort_batch`), reads the
items `keys_needed` names, calls `plan`, writes the archive objects, then each
device's writes in one conditional transaction. Offline tools (the real-data
benchmark, the backtest) run the very same functions against a table held in
a dict (`run_in_memory`). The consistency model is in docs/processor.md.

Per device, in sequence order: a reading whose timestamp its window does not
hold is applied; the same timestamp with the same content digest is a
duplicate; with another digest, a conflict (quarantined, the first stays).
Readings newer than the state's watermark go through the detector in
timestamp order; older ones (late) are stored, checked against the hard limits
(a one-reading `limit` episode each), and do not move the model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from handler import items, quarantine
from handler.aggregation import WINDOW_MS, Window, window_start
from handler.detection import Detector, DeviceModel, Episode
from handler.items import Write
from handler.quarantine import sequence_order
from handler.records import Reading, Rejected, content_digest

logger = logging.getLogger(__name__)

ItemKey = tuple  # (partition, sort key)


def _by_sequence(record: Reading | Rejected) -> int:
    return sequence_order(record.sequence_number)


class SortedBatch:
    """A batch grouped the way it is planned: per device, and per shard slot for bad records without identity."""

    def __init__(self) -> None:
        self.readings: dict[str, list[Reading]] = {}
        self.identified_bad: dict[str, list[tuple[Rejected, dict]]] = {}
        self.unidentified_bad: dict[ItemKey, list[Rejected]] = {}

    @property
    def devices(self) -> list[str]:
        return sorted(set(self.readings) | set(self.identified_bad))

    def only(self, owners: set[str]) -> "SortedBatch":
        """The part of the batch that belongs to these owners (devices, or ledger slots by `slot_owner`)."""
        part = SortedBatch()
        part.readings = {d: r for d, r in self.readings.items() if d in owners}
        part.identified_bad = {d: r for d, r in self.identified_bad.items() if d in owners}
        part.unidentified_bad = {s: r for s, r in self.unidentified_bad.items() if slot_owner(s) in owners}
        return part


def slot_owner(slot: ItemKey) -> str:
    """A ledger slot's name among the batch's owners; `|` occurs in no device id."""
    return "|".join(slot)


def sort_batch(parsed: list) -> SortedBatch:
    batch = SortedBatch()
    for record in sorted(parsed, key=_by_sequence):  # stable: batch order where sequence numbers are not numbers
        if isinstance(record, Reading):
            batch.readings.setdefault(record.device_id, []).append(record)
            continue
        known = quarantine.identity(record.raw)
        if known is not None:
            batch.identified_bad.setdefault(known[0], []).append((record, known[2]))
        else:
            slot = items.key_of(items.quarantine_slot_key(record.shard_id, record.arrival_ms))
            batch.unidentified_bad.setdefault(slot, []).append(record)
    return batch


def keys_needed(batch: SortedBatch) -> list[dict]:
    """Every item the plan reads: windows and state of each device, ledger slots of unidentified bad records."""
    keys = []
    for device_id in batch.devices:
        starts = sorted({window_start(r.timestamp_ms) for r in batch.readings.get(device_id, ())})
        keys += [items.window_key(device_id, start) for start in starts]
        keys.append(items.state_key(device_id))
    keys += [items.key(partition, sort_key) for partition, sort_key in sorted(batch.unidentified_bad)]
    return keys


class DevicePlan:
    """One device's part of a batch: what to write (one transaction) and what it amounts to."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.writes: list[Write] = []
        self.applied: list[Reading] = []
        self.quarantined: list[Rejected] = []
        self.duplicates = 0
        self.late = 0
        self.already_quarantined = 0
        self.episodes_opened: dict[str, int] = {}


class Planner:
    """Plans batches for one stack's detector and retention."""

    def __init__(self, detector: Detector, ttl_days: int) -> None:
        self.detector = detector
        self.ttl_days = ttl_days

    def plan(self, batch: SortedBatch, stored: Mapping[ItemKey, dict]) -> list[DevicePlan]:
        """A plan per device and per ledger slot (the latter under the slot's key as device_id)."""
        plans = [self.plan_device(device_id, batch.readings.get(device_id, []), batch.identified_bad.get(device_id, []),
                                  stored) for device_id in batch.devices]
        plans += [self.plan_slot(slot, records, stored) for slot, records in sorted(batch.unidentified_bad.items())]
        return plans

    def _model(self, state: items.StoredState, device_id: str) -> DeviceModel:
        if state.model is None:
            return self.detector.new_model()
        try:
            return DeviceModel.from_state(state.model)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            # A state written by another detector version: start learning again rather than stall the shard.
            logger.warning("detector state unreadable; starting a new model",
                           extra={"device_id": device_id, "error": str(error)})
            return self.detector.new_model()

    def plan_device(self, device_id: str, readings: list[Reading], bad: list[tuple[Rejected, dict]],
                    stored: Mapping[ItemKey, dict]) -> DevicePlan:
        plan = DevicePlan(device_id)
        state = items.parse_state(stored.get(items.key_of(items.state_key(device_id))))
        windows: dict[int, Window] = {}
        to_observe: dict[int, dict] = {}
        late: list[Reading] = []
        watermark = state.watermark_ms
        suspects: list[tuple[Rejected, dict]] = list(bad)
        applied = plan.applied
        for reading in readings:  # the hot loop: window_start and Window.digest_at inline
            timestamp = reading.timestamp_ms
            start = timestamp - timestamp % WINDOW_MS
            window = windows.get(start)
            if window is None:
                window = windows[start] = items.parse_window(
                    stored.get(items.key_of(items.window_key(device_id, start))), start)
            digest = content_digest(reading.message)
            held = window.applied.get(timestamp - start)
            if held is None:
                values = reading.values
                window.add(timestamp, digest, values)
                applied.append(reading)
                if timestamp <= watermark:
                    plan.late += 1
                    late.append(reading)
                else:
                    to_observe[timestamp] = values
            elif held == digest:
                plan.duplicates += 1
                # Held, but newer than the model: stored by an attempt whose state write did not land.
                if timestamp > watermark and timestamp not in to_observe:
                    to_observe[timestamp] = reading.values
            else:
                suspects.append((Rejected(quarantine.CONFLICT,
                                          f"{device_id} at {timestamp} is already stored with other content; "
                                          "the reading stored first is kept",
                                          reading.raw, reading.shard_id, reading.sequence_number,
                                          reading.arrival_ms), reading.message))
        episodes = self._detect(state, device_id, to_observe, plan) + self._late_limits(late, plan)
        marks_changed = self._fingerprint(state, suspects, plan)
        plan.writes = [items.window_write(device_id, window, self.ttl_days)
                       for _, window in sorted(windows.items()) if window.changed]
        plan.writes += [items.episode_write(device_id, episode, self.ttl_days) for episode in episodes]
        if to_observe or marks_changed:
            # Last: a device split over several transactions has its state written after its windows.
            last_data = max([r.timestamp_ms for r in readings] + [state.watermark_ms])
            plan.writes.append(items.state_write(device_id, state, self.ttl_days, last_data))
        return plan

    def _detect(self, state: items.StoredState, device_id: str, to_observe: dict[int, dict], plan: DevicePlan) -> list:
        if not to_observe:
            return []
        model = self._model(state, device_id)
        open_before = {(scope, episode.started_at) for scope, episode in model.open_episodes.items()}
        changed: dict[tuple[str, int], Episode] = {}
        observe = self.detector.observe
        for timestamp in sorted(to_observe):
            for episode in observe(model, timestamp, to_observe[timestamp]):
                changed[(episode.scope, episode.started_at)] = episode
        for identity, episode in changed.items():
            if identity not in open_before:
                plan.episodes_opened[episode.kind] = plan.episodes_opened.get(episode.kind, 0) + 1
        state.model = model.to_state()
        state.watermark_ms = max(state.watermark_ms, max(to_observe))
        state.observed += len(to_observe)
        return [changed[identity] for identity in sorted(changed)]

    def _late_limits(self, late: list[Reading], plan: DevicePlan) -> list:
        """Hard-limit episodes of readings older than the model (stored, but not observed)."""
        found = [episode for reading in late
                 for episode in self.detector.outside_limits(reading.timestamp_ms, reading.values)]
        for episode in found:
            plan.episodes_opened[episode.kind] = plan.episodes_opened.get(episode.kind, 0) + 1
        return found

    @staticmethod
    def _fingerprint(state: items.StoredState, suspects: list[tuple[Rejected, dict]], plan: DevicePlan) -> bool:
        """Quarantine the device's bad messages not seen before; True if the state's fingerprints changed."""
        known = set(state.bad_marks)
        added = False
        for rejected, message in sorted(suspects, key=lambda pair: sequence_order(pair[0].sequence_number)):
            mark = quarantine.fingerprint(message)
            if mark in known:
                plan.already_quarantined += 1
                continue
            known.add(mark)
            state.bad_marks.append(mark)
            state.bad_count += 1
            plan.quarantined.append(rejected)
            added = True
        del state.bad_marks[:-quarantine.FINGERPRINTS_KEPT]
        return added

    def plan_slot(self, slot: ItemKey, records: list[Rejected], stored: Mapping[ItemKey, dict]) -> DevicePlan:
        plan = DevicePlan(slot_owner(slot))
        ledger = items.parse_ledger(stored.get(slot))
        first = records[0]
        ledger.arrival_ms = first.arrival_ms - first.arrival_ms % items.QUARANTINE_SLOT_MS
        for record in records:
            mark = items.sequence_mark(f"{record.shard_id}:{record.sequence_number}")
            if mark in ledger.marks:
                plan.already_quarantined += 1
                continue
            ledger.marks.add(mark)
            plan.quarantined.append(record)
        if plan.quarantined:
            plan.writes = [items.ledger_write(items.key(*slot), ledger, self.ttl_days)]
        return plan


def condition_holds(write: Write, stored: Mapping[ItemKey, dict]) -> bool:
    """What DynamoDB checks for a conditional put, on a table held in memory."""
    if write.version_attribute is None:
        return True
    current = stored.get(items.key_of(write.item))
    if write.expected is None:
        return current is None
    return current is not None and int(current[write.version_attribute]["N"]) == write.expected


def run_in_memory(planner: Planner, records: list[dict], table: dict) -> list[DevicePlan]:
    """The handler's path for one batch against `table` ({(partition, sort key): item}), without AWS.

    Used by the benchmarks and the backtest; the writes are checked and applied
    as DynamoDB would, one transaction per device.
    """
    from handler.records import parse_record

    batch = sort_batch([parse_record(record) for record in records])
    plans = planner.plan(batch, table)
    for plan in plans:
        if not all(condition_holds(write, table) for write in plan.writes):
            raise RuntimeError(f"a condition failed for {plan.device_id}: the table changed under the batch")
        for write in plan.writes:
            table[items.key_of(write.item)] = write.item
    return plans
