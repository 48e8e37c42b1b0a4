"""A picture of the run: one panel per kind of injected trouble, the injected span
shaded, and the processor's anomaly episodes drawn as spans, true and false
detections in different colours."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt

from handler.message_format import KNOWN_SENSORS
from local.summary import DEVICE_SCOPE, episodes
from simulation.series import EVENT_KINDS, InjectedEvent, generate_fleet, score

INJECTED_COLOUR = "#f4b183"
TRUE_COLOUR = "#2e7d32"
FALSE_COLOUR = "#c00000"
# Episodes are drawn in bands along the bottom of each panel, so they never hide the series:
# found ones lowest, false detections above them, so neither hides the other.
TRUE_BAND = (0.0, 0.1)
FALSE_BAND = (0.11, 0.21)


def _is_true(events: list[InjectedEvent], device_id: str, sensor: str, index: int, kind: str) -> bool:
    # The summary's own scoring (simulation.series.score) on this one detection.
    return score(events, [(device_id, sensor, index, kind)])[kind].true_detections == 1


def plot_devices(manifest: dict, table_snapshot: Path, output: Path, *, seed: int, sensors: list[str],
                 panels: int = 5) -> None:
    """Regenerate the fleet's series (same seed) and overlay the episodes the run stored.

    Which series: for each kind of trouble the fleet injected, the first device
    and sensor it hit, so one picture shows every kind; without any, the first
    devices' first sensor.
    """
    period, start = manifest["period_ms"], manifest["start_ms"]
    fleet = generate_fleet(len(manifest["devices"]), manifest["readings_per_device"], seed=seed, sensors=sensors,
                           period_ms=period, warmup=manifest["warmup"])
    stored = episodes([json.loads(line) for line in table_snapshot.read_text().splitlines()])
    injected = [InjectedEvent(e["device_id"], e["sensor"], e["kind"], e["start"], e["end"]) for e in manifest["events"]]
    first_of_kind: dict[str, tuple[str, str]] = {}
    for event in injected:
        first_of_kind.setdefault(event.kind, (event.device_id, event.sensor))
    shown = list(dict.fromkeys(first_of_kind[k] for k in EVENT_KINDS if k in first_of_kind))[:panels]
    why = "one panel per kind of injected trouble: the first device and sensor it hit"
    if not shown:
        shown = [(device_id, sensors[0]) for device_id in manifest["devices"][:panels]]
        why = "nothing injected: the first devices"
    figure, axes = plt.subplots(len(shown), 1, figsize=(12, 2.8 * len(shown) + 0.6), squeeze=False)
    figure.suptitle(f"Local run: {len(manifest['devices'])} devices x {manifest['readings_per_device']} readings, "
                    f"one every {period} ms ({why})", fontsize=10)
    end_s = manifest["readings_per_device"] * period / 1000
    for axis, (device_id, sensor) in zip(axes[:, 0], shown):
        series = fleet.devices[manifest["devices"].index(device_id)].readings
        axis.plot([i * period / 1000 for i in range(len(series))], [values[sensor] for values in series],
                  linewidth=0.7, color="#3366aa", label="readings")
        kinds_here = []
        for event in (e for e in injected if e.device_id == device_id and e.sensor == sensor):
            kinds_here.append(event.kind)
            axis.axvspan(event.start * period / 1000, (event.end + 1) * period / 1000, color=INJECTED_COLOUR,
                         alpha=0.5, label=f"injected {event.kind}")
        for episode in stored:
            scope = episode["scope"]["S"]
            names = episode.get("sensors", {}).get("SS", []) if scope == DEVICE_SCOPE else [scope]
            if episode["device_id"]["S"] != device_id or sensor not in names:
                continue
            kind = episode["kind"]["S"]
            began = (int(episode["started_at"]["N"]) - start) / 1000
            ended = (int(episode["ended_at"]["N"]) - start) / 1000 if "ended_at" in episode else end_s
            true = _is_true(injected, device_id, sensor, int(began * 1000) // period, kind)
            # At least one reading wide, so a one-reading episode stays visible.
            axis.axvspan(began, max(ended, began + period / 1000), *(TRUE_BAND if true else FALSE_BAND),
                         color=TRUE_COLOUR if true else FALSE_COLOUR, hatch=None if true else "///",
                         alpha=0.9 if true else 0.6, label=f"{'found' if true else 'false detection'}: {kind}")
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        axis.legend(unique.values(), unique.keys(), loc="upper left", fontsize=7, ncols=4)
        axis.set_title(f"{device_id} {sensor}" + (f": injected {', '.join(dict.fromkeys(kinds_here))}"
                                                    if kinds_here else ""), fontsize=9, loc="left")
        unit = KNOWN_SENSORS[sensor].unit if sensor in KNOWN_SENSORS else "as reported"
        axis.set_ylabel(f"{sensor} ({unit})", fontsize=8)
        axis.set_xlabel("seconds since the first reading; episodes along the bottom, start to end (or to the end "
                        "of the run while open): green found, red hatched false", fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
