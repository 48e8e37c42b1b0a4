"""The backtest: a CSV through the handler's path, its outputs, its settings, and the same episodes as the
deployed handler stores for the same readings (the real entry point against moto's server)."""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
from pathlib import Path

import pytest

from local import backtest
from local.csv_series import ReadOptions, read_series
from harness.stack_config import PROJECT_DIR

from tests.conftest import LambdaContext

START_MS = 1_795_000_000_000  # 2026-11-18T09:06:40Z
ROWS = 900
SPIKE_ROW = 700


def history(path: Path, *, start_s: int = START_MS // 1000, separator: str = ",", extra: list[str] | None = None,
            label: bool = False) -> Path:
    """Two noisy sensors a second apart, a spike on `motor_temp` at SPIKE_ROW (labeled when `label`)."""
    rng = random.Random(5)
    lines = [separator.join(["timestamp", "Motor Temp (°C)", "Flow [l/min]"] + (["anomaly"] if label else []))]
    for row in range(ROWS):
        temperature = 60 + rng.gauss(0, 0.2) + (25 if row == SPIKE_ROW else 0)
        flow = 32 + rng.gauss(0, 0.3)
        cells = [str(start_s + row), f"{temperature:.3f}", f"{flow:.3f}"]
        lines.append(separator.join(cells + (["1" if SPIKE_ROW <= row <= SPIKE_ROW + 2 else "0"] if label else [])))
    path.write_text("\n".join(lines + (extra or [])) + "\n")
    return path


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        code = backtest.main([*args])
    finally:
        sys.stdout, sys.stderr = old
    return code, stdout.getvalue(), stderr.getvalue()


def episodes_csv(folder: Path) -> list[dict]:
    with (folder / "episodes.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_file_gives_episodes_a_summary_and_a_plot_in_the_files_own_time(tmp_path):
    path = history(tmp_path / "press-7.csv", extra=[f"{START_MS // 1000 + ROWS},n/a,31.9"])
    code, out, _ = run(tmp_path, str(path), "--output", str(tmp_path / "out"))
    assert code == 0
    spikes = [e for e in episodes_csv(tmp_path / "out") if e["kind"] == "spike"]
    assert [(e["device"], e["scope"], e["sensors"], e["start"]) for e in spikes] == [
        ("press-7", "motor_temp", "motor_temp", str(START_MS // 1000 + SPIKE_ROW))]  # epoch seconds, as the file
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert f"rows read: {ROWS + 1:,}" in summary
    assert f"1 rows with a non-numeric value (first in 'Motor Temp (°C)') (first at line {ROWS + 2})" in summary
    assert "motor_temp               <- 'Motor Temp (°C)' (°C)" in summary
    assert "flow                     <- 'Flow [l/min]' (l/min)" in summary
    assert "episodes: " in summary and "spike" in summary
    assert (tmp_path / "out" / "press-7.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"written: {tmp_path / 'out'}/" in out


def test_times_before_2020_are_shifted_for_the_handler_and_shown_as_in_the_file(tmp_path):
    path = history(tmp_path / "old.csv", start_s=1_400_000_000)  # 2014
    series = read_series(path)
    replayed = backtest.replay(series, backtest.run_config(None, [], []), now_ms=START_MS)
    assert replayed.offset_ms > 0 and replayed.offset_ms % backtest.WEEK_MS == 0
    assert replayed.stored == ROWS  # nothing refused as "before 2020"
    spike = next(item for item in replayed.episodes() if item["kind"]["S"] == "spike")
    assert int(spike["started_at"]["N"]) - replayed.offset_ms == (1_400_000_000 + SPIKE_ROW) * 1000
    assert any(f"sent {replayed.offset_ms // backtest.WEEK_MS:,} weeks ({replayed.offset_ms:,} ms) later, shown here in "
               "the file's own time" in line for line in backtest.summary_lines(replayed, None))


def test_repeated_and_late_rows_are_what_the_handler_makes_of_them(tmp_path):
    lines = ["time,temperature"] + [f"{START_MS // 1000 + row},{60 + row % 3}" for row in range(50)]
    lines.append(lines[5])                               # line 52: the same reading again
    lines.append(f"{START_MS // 1000 + 4},99")            # line 53: the time of line 6, other value
    lines.append(f"{START_MS // 1000 + 20}.5,61")         # line 54: new, but older than the newest
    path = tmp_path / "press-7.csv"
    path.write_text("\n".join(lines) + "\n")
    config = backtest.run_config(None, [], [])
    config.batch_size = 10  # late means older than what an earlier batch already observed
    replayed = backtest.replay(read_series(path), config)
    assert (replayed.stored, replayed.duplicates, replayed.late) == (51, 1, 1)
    assert replayed.quarantined == {backtest.QUARANTINE_REASONS["conflict"]: [53]}
    summary = "\n".join(backtest.summary_lines(replayed, None))
    assert "rows out of time order (sent in file order, as the handler would receive them): 3" in summary
    assert "1 conflict: the time of an earlier row of the device with other values (the first is kept) " \
           "(first at lines 53)" in summary


def test_settings_from_the_stack_and_the_command_line_change_detection(tmp_path):
    path = history(tmp_path / "press-7.csv")
    code, _, _ = run(tmp_path, str(path), "--stack", "dev", "--setting", "spikeZ=1000", "--no-plot",
                     "--output", str(tmp_path / "calm"))
    assert code == 0
    assert not [e for e in episodes_csv(tmp_path / "calm") if e["kind"] == "spike"]
    assert "detector spikeZ=1000" in (tmp_path / "calm" / "summary.txt").read_text()


@pytest.mark.parametrize("args, message", [
    (["--setting", "spikeZ=0.5"], "`anomalyDetection.spikeZ` = 0.5 is not allowed: a number from 2 to 1000"),
    (["--setting", "spikez=12"], "`anomalyDetection.spikez` is not a detector setting: did you mean spikeZ?"),
    (["--setting", "spikeZ=high"], "--setting 'spikeZ=high': the value must be a number"),
    (["--limits", "flow=10:1"], "--limits 'flow=10:1': expected sensor=LOW:HIGH with LOW < HIGH"),
    (["--stack", "qa"], "no stack file Pulumi.qa.yaml"),
])
def test_bad_settings_exit_2_with_the_validators_words(tmp_path, args, message):
    code, _, err = run(tmp_path, str(history(tmp_path / "press-7.csv")), *args)
    assert code == 2
    assert message in err


def test_hard_limits_from_the_command_line_apply(tmp_path):
    path = history(tmp_path / "press-7.csv")
    code, _, _ = run(tmp_path, str(path), "--limits", "flow=40:50", "--no-plot", "--output", str(tmp_path / "o"))
    assert code == 0
    limit = [e for e in episodes_csv(tmp_path / "o") if e["kind"] == "limit"]
    assert [(e["scope"], e["start"]) for e in limit] == [("flow", str(START_MS // 1000))]


def test_labels_are_scored_point_wise_and_as_events(tmp_path):
    path = history(tmp_path / "press-7.csv", label=True, separator=";")
    series = read_series(path, ReadOptions(labels="anomaly"))
    assert [column.sensor for column in series.sensors] == ["motor_temp", "flow"]
    replayed = backtest.replay(series, backtest.run_config(None, [], []))
    score = backtest.score_labels(replayed)
    flags = backtest.covered(replayed)
    warmup = replayed.config.warmup_readings
    expected_tp = sum(1 for row in range(warmup, ROWS) if flags[row] and series.labels[row] == 1)
    expected_fp = sum(1 for row in range(warmup, ROWS) if flags[row] and series.labels[row] == 0)
    assert (score.pointwise.tp, score.pointwise.fp) == (expected_tp, expected_fp)
    assert score.pointwise.tp + score.pointwise.fn == 3  # the three labeled rows, all after the warm-up
    assert score.events.windows == 1 and score.events.windows_hit == 1
    assert "every row anomalous" in "\n".join(backtest.label_lines(score))


def test_an_unreadable_file_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_text("nothing useful here\n")
    result = subprocess.run([sys.executable, "-m", "local.backtest", str(bad), str(tmp_path / "missing.csv")],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"backtest: {bad}: one column only ('nothing useful here'): the file needs a time column and "
                     "at least one sensor column, separated by commas, semicolons or tabs (or pass --separator)",
                     f"backtest: {tmp_path / 'missing.csv'}: no such file; check the path (relative paths start "
                     "from the current folder)"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, ending", [(Terminal(), "\r\x1b[K"), (io.StringIO(), "\n")],
                         ids=["terminal", "log"])
def test_progress_updates_one_line_on_a_terminal_and_writes_lines_elsewhere(stream, ending):
    progress = backtest.Progress("plant.csv", 1000, stream)
    progress.last = float("-inf")  # as if the interval had passed: no clock in the test
    progress.update(500)
    progress.finish()
    text = stream.getvalue()
    assert "plant.csv: 500 / 1,000 rows (50 %)" in text
    assert text.startswith("\r") == isinstance(stream, Terminal)
    assert text.endswith(ending)


def test_progress_shows_on_a_terminal_and_elsewhere_only_when_asked():
    assert isinstance(backtest.Progress.shown("plant.csv", 10, Terminal(), asked=False), backtest.Progress)
    assert backtest.Progress.shown("plant.csv", 10, io.StringIO(), asked=False) is None
    assert isinstance(backtest.Progress.shown("plant.csv", 10, io.StringIO(), asked=True), backtest.Progress)


def test_the_replays_records_are_the_rules_byte_for_byte(tmp_path):
    """RuleRecords formats what build_message and project give, for every row: empty cells, several devices,
    values json writes in exponent form, negative zero, whole numbers."""
    rng = random.Random(4)
    cells = ["1e-07", "-0.0", "12", "1.5e+16", "", "0.1", "-273.15", "3.0000000000000004", "123456.789"]
    lines = ["time,line,a,b_2,c"]
    for row in range(700):
        values = [rng.choice(cells) for _ in range(3)]
        if not any(values):
            values[0] = "7"
        lines.append(f"{START_MS // 1000 + row},{rng.choice(['press-1', 'press_2'])},{','.join(values)}")
    path = tmp_path / "plant.csv"
    path.write_text("\n".join(lines) + "\n")
    series = read_series(path, ReadOptions(device_column="line"))
    rule = backtest.RuleRecords(series, "dev", 86_400_000)
    for start in (0, 250, 500):
        stop = min(len(series), start + 250)
        assert rule.batch(start, stop) == backtest.kinesis_records(series, "dev", 86_400_000, start, stop)
    assert series.empty_cells > 0 and len(series.devices) == 2


def test_a_replay_whose_records_are_not_the_rules_stops_naming_the_line(tmp_path):
    series = read_series(history(tmp_path / "press-7.csv"))
    rule = backtest.RuleRecords(series, "dev", 0)
    rule.readings_open = rule.readings_open.replace("readings", "reading")  # as if the format had changed
    with pytest.raises(RuntimeError, match="record for line 2 is not the rule's"):
        rule.batch(0, 10)


def _episode_items(items: list[dict]) -> list[dict]:
    return sorted((item for item in items if item["item_type"]["S"] == "episode"),
                  key=lambda item: (item["device_id"]["S"], item["sk"]["S"]))


def test_the_episodes_equal_what_the_handler_stores_for_the_same_records(tmp_path, stores, index):
    """The same records, in the same batches, through `index.handler` on moto's server (dev stack): the same
    episode items, and indeed the same table (windows and device states too)."""
    text = ["time,line,Motor Temp (°C),Flow [l/min]"]
    rng = random.Random(9)
    for row in range(ROWS):
        for device, level in (("press-1", 60.0), ("press-2", 80.0)):
            jump = 6 if device == "press-2" and row >= 650 else 0
            spike = 25 if device == "press-1" and row == SPIKE_ROW else 0
            stamp = backtest_time(START_MS + row * 1000)
            text.append(f"{stamp},{device},{level + rng.gauss(0, 0.2) + spike:.3f},{32 + jump + rng.gauss(0, 0.3):.3f}")
    path = tmp_path / "plant.csv"
    path.write_text("\n".join(text) + "\n")
    series = read_series(path, ReadOptions(device_column="line"))
    config = backtest.run_config("dev", [], [])
    config.batch_size = 150  # more batches, so state goes through the table often
    replayed = backtest.replay(series, config)
    ours = _episode_items(list(replayed.table.values()))
    assert {item["kind"]["S"] for item in ours} >= {"spike"}
    rule = backtest.RuleRecords(series, config.suffix, replayed.offset_ms)
    for start in range(0, len(series), config.batch_size):
        records = rule.batch(start, min(len(series), start + config.batch_size))
        assert index.handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    theirs = _episode_items(stores.items())
    assert theirs == ours
    assert stores.items() == sorted(replayed.table.values(), key=lambda i: (i["device_id"]["S"], i["sk"]["S"]))


def backtest_time(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")
