"""Detection quality of the processor's detector on labeled synthetic series.

    python -m bench.detection_quality [--devices 50] [--readings 2000] [--seed 7]

Generates a fleet with injected spikes, jumps, drifts, stuck sensors and
out-of-limit values (simulation/series.py), runs every device's readings
through the same Detector the handler uses, in time order with the default
settings and limits, and prints precision, recall and F1 per kind.
"""

from __future__ import annotations

import argparse

from handler.detection import Detector, DeviceState
from handler.message_format import KNOWN_SENSORS
from handler.settings import DetectorSettings
from simulation.series import EVENT_KINDS, MATCH_TOLERANCE, generate_fleet, score


def detections_for(fleet) -> list[tuple[str, str, int, str]]:
    detector = Detector({name: (s.low, s.high) for name, s in KNOWN_SENSORS.items()}, DetectorSettings())
    found = []
    for device in fleet.devices:
        state, anomalies = DeviceState(), []
        for index, values in enumerate(device.readings):
            detector.observe(state, device.device_id, index, values, str(index), anomalies)
        found.extend((a.device_id, a.sensor, a.timestamp_ms, a.kind) for a in anomalies)
    return found


def report(devices: int, readings: int, seed: int) -> str:
    fleet = generate_fleet(devices, readings, seed=seed)
    scores = score(fleet.events, detections_for(fleet))
    lines = [f"{devices} devices x {readings} readings x 4 sensors, seed {seed}, "
             f"match tolerance {MATCH_TOLERANCE} readings",
             "| kind | injected | detected | detections | precision | recall | F1 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind in EVENT_KINDS:
        s = scores[kind]
        lines.append(f"| {kind} | {s.injected} | {s.detected_events} | {s.detections} | {s.precision:.3f} | "
                     f"{s.recall:.3f} | {s.f1:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--readings", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(report(args.devices, args.readings, args.seed))


if __name__ == "__main__":
    main()
