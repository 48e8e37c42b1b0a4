"""The consistency model (docs/processor.md) under what a real event source mapping does.

Each probe drives the real handler against moto's server with the mapping
model of tests/mapping_model.py (retries from the reported record, bisection
after a function error or a timeout, bounded retries, parallel lanes of one
shard) and compares the stores with ONE clean delivery of the same records
into empty stores: the same items (windows, states, episodes, ledgers), every
archived reading and every quarantined record exactly once.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import pytest

from handler.message_format import build_message
from tests.conftest import NOW_MS, SHARD, BatchBuilder, LambdaContext, Outcome, sequence
from tests.mapping_model import Mapping, Timeout

# Kill points, lost answers and parallel batches, each probed through whole retries: seconds by design.
pytestmark = pytest.mark.slow

MINUTE = 60_000
T0 = NOW_MS - NOW_MS % MINUTE - 5 * MINUTE  # a minute boundary before "now", so windows are whole minutes


def _invoke(index):
    return lambda records: index.handler({"Records": records}, LambdaContext())


def _normal(device: int, i: int) -> dict:
    return {"temperature": 70.0 + device + (i % 7) * 0.1, "vibration": 2.0 + (i % 5) * 0.01}


class Scenario:
    """A batch of the shard's traffic with everything the model must get right, after one earlier batch.

    The earlier batch (`before`, delivered cleanly first in every run) opens a
    limit episode on press-000; the probed batch (`batch`) closes it with
    normal readings, opens one on press-001, and carries a conflict (press-002
    at a stored timestamp with other values), a bad message with a reading's
    identity, and garbage without one.
    """

    def __init__(self) -> None:
        builder = BatchBuilder()
        builder.reading("press-000", T0, **_normal(0, 0))
        builder.reading("press-000", T0 + 1000, temperature=500.0, vibration=2.0)
        self.before = list(builder.records)
        builder.records.clear()
        for i in range(2, 36):
            builder.reading("press-000", T0 + i * 1000, **_normal(0, i))
            if i < 10:
                values = _normal(1, i) if i != 5 else {"temperature": 480.0, "vibration": 2.0}
                builder.reading("press-001", T0 + i * 1000, **values)
            if i % 8 == 0:
                builder.reading("press-002", T0 + i * 1000, **_normal(2, i))
            if i == 6:
                builder.message({"schema_version": 1, "device_id": "press-001", "timestamp": T0 + 6_500,
                                 "readings": {"temperature": "hot"}}, device_id="press-001")
            if i == 12:
                builder.raw(b"\x00\xffnot json")
            if i == 20:  # press-002's reading at T0+16 s again, other values: a conflict
                builder.reading("press-002", T0 + 16_000, temperature=99.0, vibration=2.0)
        self.batch = list(builder.records)
        self.expected: Outcome | None = None
        self.clean_calls: list[str] = []


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


def _clean(index, stores, *parts: list[dict]) -> Outcome:
    """The stores after one clean delivery of each part, in order, into empty stores; left empty."""
    stores.clear()
    for part in parts:
        assert index.handler({"Records": part}, LambdaContext()) == {"batchItemFailures": []}
    outcome = stores.outcome()
    stores.clear()
    return outcome


def _differences(expected: Outcome, actual: Outcome) -> list[str]:
    """What differs from the clean delivery, in words (empty: the same)."""
    found = []
    if actual.items != expected.items:
        keys = {(i["device_id"]["S"], i["sk"]["S"]): i for i in expected.items}
        got = {(i["device_id"]["S"], i["sk"]["S"]): i for i in actual.items}
        changed = sorted(k for k in set(keys) & set(got) if keys[k] != got[k])
        for k in changed[:1]:
            attributes = sorted(a for a in set(keys[k]) | set(got[k]) if keys[k].get(a) != got[k].get(a))
            found.append(f"{k}: attributes {attributes} differ")
        found.append(f"items differ: missing {sorted(set(keys) - set(got))}, extra {sorted(set(got) - set(keys))}, "
                     f"changed {sorted(k for k in set(keys) & set(got) if keys[k] != got[k])}")
    if actual.raw != expected.raw:
        twice = sorted(identity for identity, n in actual.raw_identities().items() if n > 1)
        missing = sorted(set(expected.raw_identities()) - set(actual.raw_identities()))
        found.append(f"archive differs: {len(twice)} readings archived more than once {twice[:3]}, "
                     f"{len(missing)} missing {missing[:3]}")
    if actual.quarantine != expected.quarantine:
        reasons = lambda lines: sorted(json.loads(line)["reason"] for line in lines.elements())  # noqa: E731
        found.append(f"quarantine differs: {reasons(actual.quarantine)} instead of {reasons(expected.quarantine)}")
    return found


# -- probe 1: a kill after every AWS call, then whole, bisected or reported retries -------------------------

class KillSwitch:
    """Counts the processor's AWS calls as they return (botocore `after-call`) and acts after chosen ones."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.kill_after: set[int] = set()
        self.lose_after: set[int] = set()
        self.lost = RuntimeError

    def __call__(self, event_name: str, **_) -> None:
        self.calls.append(event_name.split(".", 1)[1])
        index = len(self.calls)
        if index in self.kill_after:
            raise Timeout(f"killed after call {index} ({self.calls[-1]})")
        if index in self.lose_after:
            # The call was applied, its answer never arrives: the processor sees an error.
            raise self.lost(f"response of call {index} ({self.calls[-1]}) lost")


@pytest.fixture
def kill_switch(inject) -> KillSwitch:
    switch = KillSwitch()
    inject("after-call", switch)
    return switch


def _reference(index, stores, scenario, switch) -> Outcome:
    """One clean delivery of the scenario (computed once per module), and the calls it made."""
    if scenario.expected is None:
        stores.clear()
        if scenario.before:
            assert index.handler({"Records": scenario.before}, LambdaContext()) == {"batchItemFailures": []}
        switch.calls.clear()
        assert index.handler({"Records": scenario.batch}, LambdaContext()) == {"batchItemFailures": []}
        scenario.clean_calls = switch.calls[:]
        scenario.expected = stores.outcome()
    return scenario.expected


def _probe(index, stores, scenario, switch, mapping, kills=(), losses=()) -> tuple[list[str], list[str]]:
    """Deliver the scenario through `mapping` with the processor killed, or its answers lost, after the
    given call numbers (counted over every attempt); what differs from the clean delivery, and the calls."""
    expected = _reference(index, stores, scenario, switch)
    stores.clear()
    if scenario.before:
        assert index.handler({"Records": scenario.before}, LambdaContext()) == {"batchItemFailures": []}
    switch.calls.clear()
    switch.kill_after, switch.lose_after = set(kills), set(losses)
    try:
        mapping.deliver(scenario.batch)
    finally:
        switch.kill_after, switch.lose_after = set(), set()
    calls = switch.calls[:]
    problems = [f"given up: {len(mapping.given_up)} batches"] if mapping.given_up else []
    problems += _differences(expected, stores.outcome())
    where = [f"{calls[k - 1]} (#{k})" for k in sorted(set(kills) | set(losses))]
    return [f"after {where}: {problem}" for problem in problems], calls


@pytest.mark.parametrize("bisect", [False, True], ids=["whole retry", "bisected retry"])
def test_a_kill_after_any_call_then_retries_is_one_clean_delivery(index, stores, scenario, kill_switch, bisect):
    expected = _reference(index, stores, scenario, kill_switch)
    assert any("ended_at" in e for e in expected.episodes) and any("ended_at" not in e for e in expected.episodes), \
        "the scenario closes one episode and leaves one open"
    clean = scenario.clean_calls
    failures: list[str] = []
    for k in range(1, len(clean) + 1):
        problems, calls = _probe(index, stores, scenario, kill_switch, Mapping(_invoke(index), bisect=bisect),
                                 kills=(k,))
        failures += problems
        if k == max(n for n, api in enumerate(clean, 1) if api == "s3.PutObject") and bisect:
            # Archive written, table not: the retries read the objects back. Kill each of their calls too
            # (bisected: the first half's retry reads them, the second half's finds its readings stored).
            for j in range(k + 1, len(calls) + 1):
                problems, _ = _probe(index, stores, scenario, kill_switch, Mapping(_invoke(index), bisect=bisect),
                                     kills=(k, j))
                failures += problems
            retried = set(calls[k:])
            assert retried >= {"s3.GetObject", "s3.PutObject", "dynamodb.BatchGetItem",
                               "dynamodb.TransactWriteItems"}, f"every kind of call is a kill point: {sorted(retried)}"
    assert not failures, "\n".join(failures)


class ManyDevices(Scenario):
    """Devices enough for several transactions, each with two windows and a state (3 actions): the first
    transaction ends with a device's leading window, its other window and state in the next."""

    def __init__(self) -> None:
        builder = BatchBuilder()
        for minute in range(2):
            for d in range(40):
                builder.reading(f"press-{d:03d}", T0 + minute * MINUTE + d * 100, **_normal(d, minute))
        builder.raw(b"garbage")
        self.before, self.batch = [], list(builder.records)
        self.expected, self.clean_calls = None, []


def test_a_kill_between_the_transactions_of_a_batch_then_a_bisected_retry_is_one_clean_delivery(
        index, stores, kill_switch):
    scenario = ManyDevices()
    _reference(index, stores, scenario, kill_switch)
    assert scenario.clean_calls.count("dynamodb.TransactWriteItems") == 2
    failures: list[str] = []
    for k in range(1, len(scenario.clean_calls) + 1):
        failures += _probe(index, stores, scenario, kill_switch, Mapping(_invoke(index)), kills=(k,))[0]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("lost", ["reported", "retried in the invocation"])
def test_a_lost_answer_to_any_call_then_a_retry_from_the_reported_record_is_one_clean_delivery(
        index, stores, scenario, kill_switch, lost):
    import botocore.exceptions

    if lost != "reported":  # a read timeout after AWS applied the call: the processor itself retries it
        kill_switch.lost = lambda message: botocore.exceptions.ReadTimeoutError(endpoint_url=message)
    _reference(index, stores, scenario, kill_switch)
    failures: list[str] = []
    for k in range(1, len(scenario.clean_calls) + 1):
        mapping = Mapping(_invoke(index), bisect=True)
        problems, _ = _probe(index, stores, scenario, kill_switch, mapping, losses=(k,))
        failures += problems
        reported = [attempt.outcome for attempt in mapping.attempts if attempt.outcome.startswith("reported")]
        if reported and reported[0] != f"reported {sequence(scenario.batch[0])}":
            failures.append(f"answer to call #{k} lost: {reported[0]}, not the batch's first record")
    assert not failures, "\n".join(failures)


# -- probe 2: parallel batches of one shard, completing in any order --------------------------------------

def _shard_traffic(devices: int, readings: int) -> list[dict]:
    """`devices` devices at 1/s, each with one bad message (it has a reading's identity) and one garbage
    record under its partition key, so every lane carries bad records and they share ledger slots."""
    builder = BatchBuilder()
    for i in range(readings):
        for d in range(devices):
            device = f"press-{d:03d}"
            builder.reading(device, T0 + i * 1000, **_normal(d, i))
            if i == readings // 2:
                builder.message({"schema_version": 1, "device_id": device, "timestamp": T0 + i * 1000 + 500,
                                 "readings": {"temperature": None}}, device_id=device)
                builder.raw(f"garbage from {device}".encode(), partition_key=device)
    return builder.records


@pytest.mark.parametrize("factor, order", [
    (2, "threads"), (10, "threads"), (3, "last lane first"), (10, "one batch per lane, last lane first"),
])
def test_parallel_batches_of_one_shard_keep_every_reading_and_bad_record_once(index, stores, factor, order):
    records = _shard_traffic(devices=10, readings=6)
    expected = _clean(index, stores, records)
    mapping = Mapping(_invoke(index), batch_size=8, parallelization=factor)
    lanes = mapping.lanes(records)
    assert sum(1 for lane in lanes if lane) >= 2, "the devices spread over several lanes"
    if order == "threads":
        mapping.run_concurrently(records)
    elif order == "last lane first":
        mapping.run(records, schedule=[lane for lane in reversed(range(factor)) for _ in lanes[lane]])
    else:
        mapping.run(records, schedule=list(reversed(range(factor))))
    assert mapping.given_up == []
    assert _differences(expected, stores.outcome()) == []


# -- probe 3: a batch given up, later batches succeed, then the replay ------------------------------------

def test_a_batch_given_up_in_an_s3_outage_and_replayed_after_later_batches_converges(
        index, stores, local_aws, fault_proxy):
    from operations.replay import local_invoker, replay
    from tests.conftest import RunningContext
    from tests.fault_proxy import SLOW_DOWN

    records = _shard_traffic(devices=3, readings=12)
    batches = Mapping(None, batch_size=12).lanes(records)[0]
    given_up_batch, later = batches[0], batches[1:]
    # Compare with one clean delivery in the order the stores saw them: the replayed readings are older
    # than what later batches stored, so they are late (stored, archived, but not run through the
    # detector: docs/processor.md, "Detection, in order").
    expected = _clean(index, stores, *later, given_up_batch)
    in_order = _clean(index, stores, records)
    assert [i for i in expected.items if i["item_type"]["S"] in ("metrics", "quarantine_ledger")] == \
        [i for i in in_order.items if i["item_type"]["S"] in ("metrics", "quarantine_ledger")]
    assert (expected.raw, expected.quarantine) == (in_order.raw, in_order.quarantine)

    fault_proxy.set("s3.PutObject", error=SLOW_DOWN)
    outage = Mapping(lambda batch: index.handler({"Records": batch}, RunningContext(2_000)), max_retries=2)
    outage.deliver(given_up_batch)
    assert outage.given_up == [given_up_batch], "every attempt failed: the batch is given up"
    assert stores.outcome().items == [], "nothing reached the table without its archive"
    fault_proxy.clear()
    mapping = Mapping(_invoke(index), batch_size=12)
    for batch in later:
        mapping.deliver(batch)
    assert mapping.given_up == []

    # Lambda's S3 destination writes the invocation record with the records (deploy note 25).
    prefix = "aws/lambda/mapping-uuid/"
    stores.s3.put_object(Bucket=local_aws.archive_bucket, Key=prefix + f"{SHARD}/failure.json",
                         Body=json.dumps({"payload": {"Records": outage.given_up[0]}}).encode())
    for _ in range(2):  # replayed twice: the second changes nothing
        assert replay(stores.s3, local_aws.archive_bucket, prefix, local_invoker(), report=lambda _: None) == 12
        assert _differences(expected, stores.outcome()) == []


# -- probe 4: invocations racing on the same items ----------------------------------------------------------

class Gate:
    """Holds one named thread after its table read until another thread's invocation has finished."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.release = threading.Event()

    def __call__(self, **_) -> None:
        if threading.current_thread().name == self.held:
            assert self.release.wait(timeout=60), "the other invocation never finished"


def _race(index, inject, first: list[dict], second: list[dict], held: str) -> dict[str, dict]:
    """Run both invocations at once; the `held` one reads, then waits until the other is done, then writes."""
    gate = Gate(held)
    inject("after-call.dynamodb.BatchGetItem", gate)
    responses: dict[str, dict] = {}

    def run(name: str, records: list[dict]) -> None:
        try:
            responses[name] = index.handler({"Records": records}, LambdaContext())
        finally:
            if name != held:
                gate.release.set()

    threads = [threading.Thread(target=run, args=(name, records), name=name)
               for name, records in (("live", first), ("replay", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


@pytest.mark.parametrize("held", ["live", "replay"])
def test_a_replay_racing_the_live_mapping_on_one_window_and_ledger_slot_loses_nothing(index, stores, inject, held):
    builder = BatchBuilder()
    for i in range(10):
        builder.reading("press-007", T0 + i * 1000, **_normal(7, i))
        if i in (2, 7):
            builder.raw(f"garbage {i}".encode(), partition_key="press-007")
    replayed, live = builder.records[:6], builder.records[6:]  # the replay holds the older readings
    responses = _race(index, inject, live, replayed, held)
    mapping = Mapping(_invoke(index))
    for name, records in (("live", live), ("replay", replayed)):
        if responses[name]["batchItemFailures"]:  # reported: its retry from the reported record converges
            mapping.deliver(records[[sequence(r) for r in records].index(
                responses[name]["batchItemFailures"][0]["itemIdentifier"]):])
    assert mapping.given_up == []
    outcome = stores.outcome()
    window = [i for i in outcome.items if i["item_type"]["S"] == "metrics"]
    assert [w["reading_count"]["N"] for w in window] == ["10"], "every reading of the minute is in its window"
    assert window[0]["sensors"]["M"]["temperature"]["M"]["count"]["N"] == "10"
    assert sorted(outcome.raw_identities().values()) == [1] * 10
    ledger = [i for i in outcome.items if i["item_type"]["S"] == "quarantine_ledger"]
    assert [slot["entries"]["N"] for slot in ledger] == ["2"], "both garbage records in the one ledger slot"
    assert sorted(json.loads(line)["sequence_number"] for line in outcome.quarantine.elements()) == \
        sorted(sequence(r) for r in builder.records if b"garbage" in base64.b64decode(r["kinesis"]["data"]))


# -- probe 7: input edges ------------------------------------------------------------------------------------

def _payload_of(size: int) -> bytes:
    """A valid device message of exactly `size` bytes as the device sends it (compact JSON): a field the
    format does not name carries the bulk (the processor ignores fields it does not know)."""
    message = build_message("press-001", T0, {"temperature": 70.0})
    message["note"] = ""
    message["note"] = "x" * (size - len(json.dumps(message, separators=(",", ":"))))
    payload = json.dumps(message, separators=(",", ":")).encode()
    assert len(payload) == size
    return payload


@pytest.mark.parametrize("size, stored", [(16 * 1024, True), (16 * 1024 + 1, False), (1024 * 1024 - 512, False)],
                         ids=["16 KiB", "16 KiB + 1", "about 1 MiB"])
def test_the_size_limit_is_the_device_payload_and_larger_records_are_kept_whole(index, stores, size, stored):
    batch = BatchBuilder()
    record = batch.message(_payload_of(size))
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    outcome = stores.outcome()
    if stored:
        assert list(outcome.raw_identities()) == [("press-001", T0)] and not outcome.quarantine
        return
    assert not outcome.raw
    [line] = [json.loads(text) for text in outcome.quarantine]
    assert line["reason"] == "too_large", line["detail"]
    assert base64.b64decode(line["data_base64"]) == base64.b64decode(record["kinesis"]["data"]), \
        "every byte of the record is kept"


@pytest.mark.parametrize("message, reason", [
    ({"schema_version": 1, "device_id": "press-001", "timestamp": T0, "readings": {"temperature\n": 500.0}},
     "readings"),
    ({"schema_version": 1, "device_id": "press-001\n", "timestamp": T0, "readings": {"temperature": 500.0}},
     "device_id"),
], ids=["sensor name", "device id"])
def test_a_name_with_a_trailing_newline_is_rejected(index, stores, message, reason):
    batch = BatchBuilder()
    batch.message(message, device_id="press-001")
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    outcome = stores.outcome()
    assert [json.loads(line)["reason"] for line in outcome.quarantine] == [reason]
    assert not outcome.raw and not outcome.episodes
    assert not [i for i in outcome.items if i["item_type"]["S"] == "metrics"]


def test_a_second_reading_with_the_same_identity_and_other_values_is_kept_as_a_conflict_and_counted(
        index, stores, capsys):
    batch = BatchBuilder()
    batch.reading("press-001", T0, temperature=70.0)
    conflicting = batch.reading("press-001", T0, temperature=71.5)
    capsys.readouterr()
    assert index.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    metrics = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (metrics["ReadingsStored"], metrics["ReadingConflicts"], metrics["RecordsQuarantined"]) == (1, 1, 1)
    outcome = stores.outcome()
    [window] = [i for i in outcome.items if i["item_type"]["S"] == "metrics"]
    assert window["sensors"]["M"]["temperature"]["M"]["last"] == {"N": "70.0"}, "the reading applied first stays"
    [line] = [json.loads(text) for text in outcome.quarantine]
    assert (line["reason"], line["sequence_number"]) == ("conflict", sequence(conflicting))
    assert base64.b64decode(line["data_base64"]) == base64.b64decode(conflicting["kinesis"]["data"])


# -- probe 8: the call budget ----------------------------------------------------------------------------------

def _ceil(n: int, d: int) -> int:
    return -(-n // d)


@pytest.mark.parametrize("devices, minutes, bad", [(120, 1, False), (60, 1, True), (100, 2, False)],
                         ids=["120 devices", "60 devices and bad records", "100 devices over two minutes"])
def test_a_batch_costs_one_put_per_object_and_a_transaction_per_100_actions_as_counted_and_as_sent(
        index, stores, inject, devices, minutes, bad):
    from handler import items
    from handler.storage import Deadline

    sent = Counter()
    inject("before-call", lambda event_name, **_: sent.update([event_name.split(".", 2)[2]]))
    answers: list[str] = []  # every answer, to tell a retried call from a badly packed batch
    inject("after-call", lambda http_response, event_name, **_: answers.append(
        f"{event_name.split('.', 2)[2]} {http_response.status_code}"))
    batch = BatchBuilder()
    for d in range(devices):
        for minute in range(minutes):
            batch.reading(f"press-{d:03d}", T0 + minute * MINUTE + 30_000, **_normal(d % 50, minute))
    if bad:
        batch.raw(b"garbage")
        batch.message({"schema_version": 2, "device_id": "press-000", "timestamp": T0, "readings": {}})
    report = index.PROCESSOR.process(batch.records, Deadline(LambdaContext().get_remaining_time_in_millis))
    assert report.failed_from is None, report.failure
    stored = stores.items()
    actions = len(stored)  # a fresh table: every item written once, each one transaction action
    assert actions == devices * (minutes + 1) + (1 if bad else 0), "windows and states, no episode"
    keys = devices * (minutes + 1) + (1 if bad else 0)  # windows and states, and a ledger slot
    assert report.calls.counts == {
        "BatchGetItem": _ceil(keys, 100),
        "PutObject": 2 if bad else 1,
        "TransactWriteItems": _ceil(actions, 100),
    }, f"{actions} actions; answers {answers}"
    assert dict(sent) == report.calls.counts, "the processor counts the calls it really sends"
    assert report.calls.write_units == sum(2 * _ceil(items.item_size(item), 1024) for item in stored)
