"""A picture of the run: a few devices' readings, with injected trouble shaded and
detected anomalies marked."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from simulation.series import generate_fleet  # noqa: E402

MARKERS = {"spike": "^", "jump": "s", "drift": "D", "stuck": "x", "limit": "*"}


def plot_devices(manifest: dict, table_snapshot: Path, output: Path, *, seed: int, sensors: list[str],
                 devices_shown: int = 4) -> None:
    """Regenerate the fleet's series (same seed) and overlay the anomalies the run stored."""
    period, start = manifest["period_ms"], manifest["start_ms"]
    readings = max(1, round(len(manifest["devices"]) and _readings_per_device(manifest)))
    fleet = generate_fleet(len(manifest["devices"]), readings, seed=seed, sensors=sensors, period_ms=period)
    anomalies = [json.loads(line) for line in table_snapshot.read_text().splitlines()]
    anomalies = [a for a in anomalies if a.get("item_type", {}).get("S") == "anomaly"]
    with_events = sorted({e["device_id"] for e in manifest["events"]})[:devices_shown]
    shown = with_events or manifest["devices"][:devices_shown]
    figure, axes = plt.subplots(len(shown), 1, figsize=(12, 2.6 * len(shown)), squeeze=False)
    for axis, device_id in zip(axes[:, 0], shown):
        index = manifest["devices"].index(device_id)
        series = fleet.devices[index].readings
        events = [e for e in manifest["events"] if e["device_id"] == device_id]
        sensor = events[0]["sensor"] if events else sensors[0]
        seconds = [i * period / 1000 for i in range(len(series))]
        axis.plot(seconds, [values[sensor] for values in series], linewidth=0.7, color="#3366aa")
        for event in (e for e in events if e["sensor"] == sensor):
            axis.axvspan(event["start"] * period / 1000, (event["end"] + 1) * period / 1000, color="#f4b183",
                         alpha=0.5, label=f"injected {event['kind']}")
        for anomaly in anomalies:
            if anomaly["device_id"]["S"] == device_id and anomaly["sensor"]["S"] == sensor:
                kind = anomaly["kind"]["S"]
                axis.scatter([(int(anomaly["timestamp_ms"]["N"]) - start) / 1000], [float(anomaly["value"]["N"])],
                             marker=MARKERS.get(kind, "o"), color="#c00000", zorder=3, label=f"detected {kind}")
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        axis.legend(unique.values(), unique.keys(), loc="upper left", fontsize=7, ncols=4)
        axis.set_title(f"{device_id} {sensor}", fontsize=9, loc="left")
        axis.set_xlabel("seconds since start", fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def _readings_per_device(manifest: dict) -> int:
    malformed = sum(manifest["malformed"].values())
    return (manifest["readings"] + malformed) // len(manifest["devices"])
