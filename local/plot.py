"""A picture of the run: a few devices' readings, with injected trouble shaded and
detected anomalies marked."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from simulation.series import EVENT_KINDS, generate_fleet  # noqa: E402

MARKERS = {"spike": "^", "jump": "s", "drift": "D", "stuck": "x", "limit": "*"}


def plot_devices(manifest: dict, table_snapshot: Path, output: Path, *, seed: int, sensors: list[str],
                 panels: int = 5) -> None:
    """Regenerate the fleet's series (same seed) and overlay the anomalies the run stored.

    One panel per kind of injected trouble (the first device and sensor it hit),
    so one picture shows each kind; without any, the first devices.
    """
    period, start = manifest["period_ms"], manifest["start_ms"]
    fleet = generate_fleet(len(manifest["devices"]), manifest["readings_per_device"], seed=seed, sensors=sensors,
                           period_ms=period)
    anomalies = [json.loads(line) for line in table_snapshot.read_text().splitlines()]
    anomalies = [a for a in anomalies if a.get("item_type", {}).get("S") == "anomaly"]
    first_of_kind: dict[str, tuple[str, str]] = {}
    for event in manifest["events"]:
        first_of_kind.setdefault(event["kind"], (event["device_id"], event["sensor"]))
    shown = list(dict.fromkeys(first_of_kind[k] for k in EVENT_KINDS if k in first_of_kind))[:panels]
    shown = shown or [(device_id, sensors[0]) for device_id in manifest["devices"][:panels]]
    figure, axes = plt.subplots(len(shown), 1, figsize=(12, 2.6 * len(shown)), squeeze=False)
    for axis, (device_id, sensor) in zip(axes[:, 0], shown):
        index = manifest["devices"].index(device_id)
        series = fleet.devices[index].readings
        events = [e for e in manifest["events"] if e["device_id"] == device_id]
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

