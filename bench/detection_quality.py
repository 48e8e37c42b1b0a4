"""Detection quality of the processor's detector on labeled synthetic series.

    python -m bench.detection_quality [--devices 50] [--readings 3000] [--seed 7] [--setting levelZ=6.5 ...]

Generates a fleet with injected spikes, level shifts, drifts, stuck sensors and
out-of-limit values (simulation/series.py), runs every device's readings
through the same Detector the handler uses, in time order with the default
settings (or those --setting overrides, as in bench.detection_real) and limits, and prints precision, recall and F1 per kind, one
detection per episode (at its first reading, with its final kind). Kinds the
generator does not inject (variance, multivariate) are listed with their
episodes: every one of them is a false detection here.
"""

from __future__ import annotations

import argparse

from bench.detection_real import add_setting_argument, settings_from_arguments
from handler.detection import DEVICE_SCOPE, Detector
from handler.detector_settings import DetectorSettings
from handler.message_format import KNOWN_SENSORS
from simulation.series import EVENT_KINDS, MATCH_TOLERANCE, generate_fleet, score

START_MS = 1_800_000_000_000


def detections_for(fleet, settings: DetectorSettings | None = None) -> list[tuple[str, str, int, str]]:
    """One detection per episode: (device, sensor, index of its first reading, kind)."""
    detector = Detector({name: (s.low, s.high) for name, s in KNOWN_SENSORS.items()}, settings or DetectorSettings())
    found = []
    step = fleet.period_ms
    for device in fleet.devices:
        model, episodes = detector.new_model(), {}
        for index, values in enumerate(device.readings):
            for episode in detector.observe(model, START_MS + index * step, values):
                episodes[(episode.scope, episode.started_at)] = episode
        for episode in episodes.values():
            # The generator labels sensors; a joint episode is scored against each sensor it names.
            sensors = episode.sensors if episode.scope == DEVICE_SCOPE else (episode.scope,)
            for sensor in sensors:
                found.append((device.device_id, sensor, (episode.started_at - START_MS) // step, episode.kind))
    return found


def report(devices: int, readings: int, seed: int, settings: DetectorSettings | None = None) -> str:
    settings = settings or DetectorSettings()
    # Trouble is injected only after the detector's warm-up, when it has learned what normal is.
    fleet = generate_fleet(devices, readings, seed=seed, warmup=settings.warmupReadings)
    scores = score(fleet.events, detections_for(fleet, settings))
    lines = [f"{devices} devices x {readings} readings x 4 sensors, seed {seed}, "
             f"match tolerance {MATCH_TOLERANCE} readings",
             "| kind | injected | detected | detections | precision | recall | F1 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind in list(EVENT_KINDS) + sorted(set(scores) - set(EVENT_KINDS)):
        s = scores[kind]
        lines.append(f"| {kind} | {s.injected} | {s.detected_events} | {s.detections} | {s.precision:.3f} | "
                     f"{s.recall:.3f} | {s.f1:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--readings", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    add_setting_argument(parser)
    args = parser.parse_args()
    _, settings = settings_from_arguments(parser, args.setting)
    print(report(args.devices, args.readings, args.seed, settings))


if __name__ == "__main__":
    main()
