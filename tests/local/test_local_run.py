"""A short local run, end to end: every published message is accounted for,
duplicates are stored once, injected anomalies are detected, results land in a
fresh run folder that `latest` points at.

Nothing here depends on timing: the run waits for every record however slow
the machine, and the assertions are about counts and labels only.
"""

import json
import subprocess
import sys

import pytest

from local.fleet import MALFORMED_KINDS
from harness.stack_config import PROJECT_DIR
from simulation.series import EVENT_KINDS

pytestmark = pytest.mark.e2e

RULE_REJECTED_KINDS = {"not_json", "json_array"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-run")
    # A file an earlier run's layout left at the top: nothing may read it as this run's.
    (root / "table.jsonl").write_text("stale\n")
    completed = subprocess.run(
        # 1000 readings per device: past the detector's warm-up (400), room for every kind of trouble.
        [sys.executable, "-m", "local.run", "--devices", "4", "--rate", "50", "--duration", "20",
         "--malformed", "0.03", "--duplicates", "0.03", "--seed", "3", "--output", str(root)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900,
    )
    output = root / "latest"
    log = output / "run.log"
    assert completed.returncode == 0, "\n".join([completed.stdout[-2000:], completed.stderr[-2000:],
                                                 log.read_text()[-3000:] if log.exists() else ""])
    summary = json.loads((output / "summary.json").read_text())
    summary["printed"] = completed.stdout
    return output, summary, json.loads((output / "fleet.json").read_text())


def test_the_printed_summary_is_words_and_sums_not_python_values(run):
    _, summary, _ = run
    printed = summary["printed"]
    assert "{" not in printed and "': " not in printed, printed  # no dict reprs
    malformed = sum(summary["published_malformed"].values())
    assert (f"malformed {malformed} = {summary['rule_errors']} rule errors + {summary['quarantined']} quarantined"
            in printed)
    drift = summary["detection"]["drift"]
    assert (f"{drift['injected']:3d} injected, {drift['detected']:3d} found, {drift['detections']:3d} reported, "
            f"{drift['true_detections']:3d} of them true: precision {drift['precision']:.2f}") in printed


def test_the_summary_says_when_there_is_no_plot(run):
    from local.summary import render

    output, summary, _ = run
    assert "summary.json, readings.png," in render(summary, output)
    assert "summary.json, no plot (--no-plot)," in render({**summary, "plot": None}, output)


def test_results_go_to_a_fresh_run_folder_that_latest_points_at(run):
    output, summary, _ = run
    assert output.is_symlink() and output.resolve().parent == output.parent / "runs"
    assert summary["plot"] == "readings.png"


def test_every_published_message_is_accounted_for(run):
    _, summary, fleet = run
    assert summary["every_message_accounted_for"] is True
    assert summary["published"] == fleet["published"] > 3000
    assert summary["publish_failures"] == summary["never_reached_rule"] == summary["unaccounted"] == 0
    assert summary["sent_to_failure_destination"] == 0


def test_each_good_reading_is_stored_once_and_duplicates_are_dropped(run):
    _, summary, fleet = run
    assert summary["readings_stored"] == summary["readings_archived"] == fleet["readings"]
    # The processor reports at least the injected duplicates (a retried batch adds its own).
    assert summary["duplicates_dropped"] >= fleet["duplicates"] > 0


def test_malformed_messages_are_kept_by_the_rule_or_quarantined(run):
    output, summary, fleet = run
    rejected_by_rule = sum(n for kind, n in fleet["malformed"].items() if kind in RULE_REJECTED_KINDS)
    assert set(fleet["malformed"]) == set(MALFORMED_KINDS)
    assert summary["rule_errors"] == rejected_by_rule
    assert len((output / "rule-errors.jsonl").read_text().splitlines()) == rejected_by_rule
    assert summary["quarantined"] == sum(fleet["malformed"].values()) - rejected_by_rule


def test_injected_anomalies_are_detected(run):
    _, summary, _ = run
    injected = {kind: q for kind, q in summary["detection"].items() if q["injected"]}
    assert set(injected) == set(EVENT_KINDS), f"this seed should inject every kind: {summary['detection']}"
    # Detection quality proper is bench/detection_quality.py's business (the detector's spike
    # threshold is tuned on real data, and misses this generator's milder spikes); here, that the
    # episodes the processor stores are found and scored: the slow kinds and the hard limits.
    for kind in ("level_shift", "drift", "stuck", "limit"):
        quality = injected[kind]
        assert quality["recall"] == 1.0, f"{kind}: {quality}"
        assert quality["precision"] >= 0.5, f"{kind}: {quality}"


def test_run_leaves_a_plot_a_table_snapshot_and_a_strict_json_summary(run):
    output, _, _ = run

    def reject(constant):
        raise ValueError(f"summary.json holds {constant}, which is not JSON")

    json.loads((output / "summary.json").read_text(), parse_constant=reject)
    assert (output / "readings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (output / "table.jsonl").read_text().count("#metrics") > 0


def test_inspect_shows_a_devices_metrics_and_episodes_in_time_order(run, capsys):
    from local import inspect

    output, summary, _ = run
    assert inspect.main(["--device", "press-000", "--snapshot", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(" METRICS " in line or " EPISODE " in line for line in lines)
    assert any(" EPISODE " in line for line in lines), "press-000 has an injected limit: one episode at least"
    assert lines == sorted(lines)
    first_minute = lines[0][:16]  # YYYY-MM-DDTHH:MM
    assert inspect.main(["--device", "press-000", "--snapshot", str(output / "table.jsonl"),
                         "--from", first_minute, "--to", first_minute]) == 0
    in_range = capsys.readouterr().out.splitlines()
    assert in_range and all(line.startswith(first_minute) for line in in_range)
    assert inspect.main(["--device", "press-999", "--snapshot", str(output / "table.jsonl")]) == 1
