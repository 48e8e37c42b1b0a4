"""A simulated fleet of manufacturing devices publishing over MQTT, with labeled trouble.

Locally (started by `local.run`):
    python -m local.fleet --port 1883 --suffix dev --devices 20 --rate 5 --duration 60 --manifest fleet.json

Against a real stack (one device: its certificate may only publish as itself):
    python -m local.fleet --endpoint <pulumi stack output iotEndpoint> --suffix dev --device press-001 \\
        --cert press-001.cert.pem --key press-001.key --ca AmazonRootCA1.pem --rate 1 --duration 60

Every message is a real device message (handler/message_format.py) published
to the device's own topic in the stack's namespace, connected with the device's
thing name as client id. Besides readings with injected anomalies
(simulation/series.py), the fleet publishes malformed messages and re-publishes
some messages (duplicates); the manifest records all of it, so a run can be
checked against what was injected.
"""

from __future__ import annotations

import argparse
import json
import random
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from handler.message_format import build_message, telemetry_topic, thing_name, topic_filter
from simulation.series import SENSOR_PROFILES, generate_fleet

# See Publisher: paho's thread-per-client loop and select()'s descriptor limit.
MAX_DEVICES = 300
DEFAULT_WARMUP = 30  # simulation.series.generate_fleet's own
# QoS 1 messages a fleet may have in flight before publishing waits for acknowledgements.
MAX_UNACKNOWLEDGED = 2000

# Malformed messages a broken device or a bad firmware sends. The first two are
# not JSON objects, so the topic rule itself rejects them (its error action
# keeps them); the rest reach the processor, which quarantines them.
MALFORMED_KINDS = ("not_json", "json_array", "missing_device_id", "text_value", "future_timestamp", "bad_version")


@dataclass
class FleetManifest:
    """What the fleet published: the ground truth a run is checked against."""

    devices: list[str]
    period_ms: int
    start_ms: int
    readings_per_device: int
    # The generator's warm-up (simulation.series): trouble starts after twice this many readings.
    warmup: int = DEFAULT_WARMUP
    readings: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    published: int = 0
    events: list[dict] = field(default_factory=list)
    publish_failures: int = 0


def malformed_payload(kind: str, device_id: str, timestamp_ms: int, rng: random.Random) -> bytes:
    message = build_message(device_id, timestamp_ms, {"temperature": 70.0})
    if kind == "not_json":
        return b"temperature=70.0;vibration=" + bytes([rng.randrange(128, 256)])
    if kind == "json_array":
        return b"[70.0, 4.0, 101.3]"
    if kind == "missing_device_id":
        del message["device_id"]
    elif kind == "text_value":
        message["readings"]["temperature"] = "hot"
    elif kind == "future_timestamp":
        message["timestamp"] = timestamp_ms + 86_400_000
    elif kind == "bad_version":
        message["schema_version"] = 99
    return json.dumps(message).encode()


class Publisher:
    """One MQTT connection per device (client id = the device's thing name, as IoT Core requires).

    paho gives each connection a network thread that waits with select(), on three
    descriptors per client; select() fails past descriptor 1023, so one process
    serves at most MAX_DEVICES devices.
    """

    def __init__(self, devices: list[str], host: str, port: int, *, suffix: str, tls: ssl.SSLContext | None = None,
                 connect_timeout_s: float = 30.0) -> None:
        self.suffix = suffix
        self.clients: dict[str, mqtt.Client] = {}
        self.refusals: dict[str, str] = {}
        connected: dict[str, threading.Event] = {}
        try:
            for device_id in devices:
                client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=thing_name(suffix, device_id),
                                     clean_session=True)
                if tls is not None:
                    client.tls_set_context(tls)
                client.max_inflight_messages_set(1000)
                client.max_queued_messages_set(0)
                connected[device_id] = threading.Event()
                client.on_connect = self._on_connect(device_id, connected[device_id])
                client.connect(host, port, keepalive=60)
                client.loop_start()
                self.clients[device_id] = client
        except BaseException:
            self.close()
            raise
        self.pending: deque[mqtt.MQTTMessageInfo] = deque()
        self.failures = 0
        deadline = time.monotonic() + connect_timeout_s
        waiting = [d for d, event in connected.items() if not event.wait(max(0.0, deadline - time.monotonic()))]
        if waiting or self.refusals:
            self.close()
            reasons = sorted({**{d: "no CONNACK" for d in waiting}, **self.refusals}.items())
            shown = ", ".join(f"{device} ({reason})" for device, reason in reasons[:5])
            raise ConnectionError(
                f"{host}:{port} did not accept {len(reasons)} of {len(devices)} devices: {shown}"
                f"{', ...' if len(reasons) > 5 else ''}. Against AWS IoT: the certificate must be active and "
                "attached to the device's thing (stack output deviceThingNames), --suffix must be the stack's, and the "
                "endpoint must be the stack's iotEndpoint output")

    def _on_connect(self, device_id: str, connected: threading.Event):
        def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
            if reason_code.is_failure:
                self.refusals[device_id] = str(reason_code)
            else:
                connected.set()
        return on_connect

    def publish(self, device_id: str, payload: bytes) -> None:
        self.pending.append(self.clients[device_id].publish(telemetry_topic(self.suffix, device_id), payload, qos=1))
        if len(self.pending) >= MAX_UNACKNOWLEDGED:
            # Back-pressure: a publisher that ran ahead of its acknowledgements would hold ever more
            # messages and, keeping the interpreter busy, slow the network threads further.
            self._settle(keep=MAX_UNACKNOWLEDGED // 2)

    def drain(self) -> int:
        """Wait for every QoS 1 acknowledgement; return how many messages were never acknowledged."""
        self._settle(keep=0)
        return self.failures

    def _settle(self, keep: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.pending) > keep:
            info = self.pending.popleft()
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                self.failures += 1  # not even queued: the client was not connected
                continue
            info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                self.failures += 1

    def close(self) -> None:
        # Disconnect all first: it wakes each network thread, so the joins below do not
        # wait out every client's select timeout one after another.
        for client in self.clients.values():
            client.disconnect()
        for client in self.clients.values():
            client.loop_stop()


def generator_warmup(detector_warmup: int) -> int:
    """simulation.series places trouble after twice its `warmup`; the detector scores a sensor after
    its warmupReadings. Half of those, so every injected event falls where the detector can see it."""
    return max(1, (detector_warmup + 1) // 2)


def run_fleet(publisher: Publisher, devices: int, rate: float, duration_s: float, seed: int,
              sensors: list[str], malformed_fraction: float, duplicate_fraction: float,
              device_ids: list[str] | None = None, progress=None, warmup: int = DEFAULT_WARMUP) -> FleetManifest:
    readings_per_device = max(1, int(rate * duration_s))
    period_ms = int(1000 / rate)
    fleet = generate_fleet(devices, readings_per_device, seed=seed, sensors=sensors, period_ms=period_ms,
                           warmup=warmup)
    if device_ids:
        for series, device_id in zip(fleet.devices, device_ids):
            series.device_id = device_id
    rng = random.Random(seed + 1)
    start_ms = int(time.time() * 1000)
    manifest = FleetManifest(devices=[d.device_id for d in fleet.devices], period_ms=period_ms, start_ms=start_ms,
                             readings_per_device=readings_per_device, warmup=warmup)
    renamed = {f"press-{i:03d}": d.device_id for i, d in enumerate(fleet.devices)}
    manifest.events = [{**asdict(e), "device_id": renamed.get(e.device_id, e.device_id),
                        "start_ms": start_ms + e.start * period_ms, "end_ms": start_ms + e.end * period_ms}
                       for e in fleet.events]
    recent: list[tuple[str, bytes]] = []
    replaced: set[tuple[str, int]] = set()
    started = time.monotonic()
    for index in range(readings_per_device):
        timestamp_ms = start_ms + index * period_ms
        for series in fleet.devices:
            device_id = series.device_id
            if rng.random() < malformed_fraction:
                # Round-robin, so even a short run sends every kind of malformed message.
                kind = MALFORMED_KINDS[sum(manifest.malformed.values()) % len(MALFORMED_KINDS)]
                payload = malformed_payload(kind, device_id, timestamp_ms, rng)
                manifest.malformed[kind] = manifest.malformed.get(kind, 0) + 1
                replaced.add((device_id, index))
            else:
                payload = json.dumps(build_message(device_id, timestamp_ms, series.readings[index],
                                                   sequence=index)).encode()
                manifest.readings += 1
                recent.append((device_id, payload))
            publisher.publish(device_id, payload)
            manifest.published += 1
            if recent and rng.random() < duplicate_fraction:
                publisher.publish(*recent[rng.randrange(len(recent))])
                manifest.duplicates += 1
                manifest.published += 1
            del recent[:-200]
        # Pace to real time: device clocks and publish times agree.
        lag = started + (index + 1) * period_ms / 1000 - time.monotonic()
        if lag > 0:
            time.sleep(lag)
        if progress is not None:
            progress(manifest)
    manifest.publish_failures = publisher.drain()
    # An event whose only reading was replaced by a malformed message never reached the data.
    manifest.events = [e for e in manifest.events
                       if not (e["start"] == e["end"] and (e["device_id"], e["start"]) in replaced)]
    return manifest


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    context.load_cert_chain(certfile=args.cert, keyfile=args.key)
    return context


def _suffix(value: str) -> str:
    try:
        topic_filter(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None, help="local broker port (local run)")
    parser.add_argument("--endpoint", help="AWS IoT data endpoint (real stack); MQTT over TLS on 8883")
    parser.add_argument("--endpoint-port", type=int, default=8883,
                        help="TLS port for --endpoint (default 8883, AWS IoT's MQTT over TLS)")
    parser.add_argument("--suffix", required=True, type=_suffix,
                        help="the stack's environmentSuffix: its topic namespace and the end of its thing names")
    parser.add_argument("--device", help="the device's id (as in the stack's devices), for --endpoint")
    parser.add_argument("--cert", help="the device certificate (PEM), for --endpoint")
    parser.add_argument("--key", help="the device private key (PEM), for --endpoint")
    parser.add_argument("--ca", help="Amazon root CA (PEM), for --endpoint")
    parser.add_argument("--devices", type=int, default=20, help="simulated devices, for --port")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per device (default 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--sensors", default=",".join(SENSOR_PROFILES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--malformed", type=float, default=0.01, help="fraction of messages that are malformed")
    parser.add_argument("--duplicates", type=float, default=0.01, help="fraction of messages published twice")
    parser.add_argument("--manifest", type=Path, help="write what was published here (JSON)")
    parser.add_argument("--detector-warmup", type=int, default=2 * DEFAULT_WARMUP,
                        help="readings the processor's detector learns before it scores a sensor (its "
                             "warmupReadings): injected trouble starts after them")
    args = parser.parse_args()
    if args.endpoint:
        missing = [f"--{flag}" for flag in ("device", "cert", "key", "ca") if not getattr(args, flag)]
        if missing:
            parser.error(f"--endpoint needs {', '.join(missing)}: the device's thing name, its certificate and "
                         "private key, and Amazon's root CA")
        unreadable = [f"--{flag} {getattr(args, flag)}" for flag in ("cert", "key", "ca")
                      if not Path(getattr(args, flag)).is_file()]
        if unreadable:
            parser.error(f"no such file: {', '.join(unreadable)}")
        devices, host, port = [args.device], args.endpoint, args.endpoint_port
    elif args.port:
        if not 1 <= args.devices <= MAX_DEVICES:
            parser.error(f"--devices {args.devices}: use 1 to {MAX_DEVICES} (see Publisher)")
        devices, host, port = [f"press-{i:03d}" for i in range(args.devices)], "127.0.0.1", args.port
    else:
        parser.error("give --port (local broker) or --endpoint (a real stack)")
    try:
        publisher = Publisher(devices, host, port, suffix=args.suffix, tls=_tls_context(args) if args.endpoint else None)
    except (OSError, ssl.SSLError) as error:  # ConnectionError included: refused, or files unreadable
        sys.exit(f"cannot connect to {host}:{port}: {error}")
    sensors = [s for s in args.sensors.split(",") if s]
    try:
        manifest = run_fleet(publisher, len(devices), args.rate, args.duration, args.seed, sensors,
                             args.malformed, args.duplicates, device_ids=devices,
                             warmup=generator_warmup(args.detector_warmup))
    finally:
        publisher.close()
    if args.manifest:
        args.manifest.write_text(json.dumps(asdict(manifest)))
    print(json.dumps({"published": manifest.published, "readings": manifest.readings,
                      "duplicates": manifest.duplicates, "malformed": manifest.malformed,
                      "publish_failures": manifest.publish_failures}), file=sys.stderr)


if __name__ == "__main__":
    main()
