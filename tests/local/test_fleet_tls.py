"""The simulator's real-stack mode: MQTT over TLS with a device certificate, as AWS IoT Core
requires, against a local TLS broker with a test CA."""

import asyncio
import datetime
import json
import ssl
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from handler.message_format import telemetry_topic, topic_filter
from local.broker import listener, serve
from local.processes import free_port
from harness.stack_config import PROJECT_DIR

DEVICE = "press-001"
SUFFIX = "dev"


def _issue(directory, name: str, issuer=None, *, ca: bool = False, dns: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (directory / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return certificate, key


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    """A TLS-only broker whose certificate a test CA signed, and a subscriber on the rule's filter."""
    pki = tmp_path_factory.mktemp("pki")
    ca = _issue(pki, "test-ca", ca=True)
    _issue(pki, "broker", ca, dns="localhost")
    _issue(pki, DEVICE, ca)
    _issue(pki, "other-ca", ca=True)
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    files = {"cafile": str(pki / "test-ca.pem"), "certfile": str(pki / "broker.pem"),
             "keyfile": str(pki / "broker.key")}
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(listener(port, **files), stop),),
                              daemon=True)
    thread.start()
    received: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rule")
    subscriber.tls_set(ca_certs=files["cafile"], certfile=str(pki / f"{DEVICE}.pem"), keyfile=str(pki / f"{DEVICE}.key"))
    subscriber.on_connect = lambda client, *_: client.subscribe(topic_filter(SUFFIX), qos=1)
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.on_message = lambda _client, _userdata, message: received.append(message)
    for _ in range(50):
        try:
            subscriber.connect("localhost", port)
            break
        except (ConnectionRefusedError, ssl.SSLError):
            threading.Event().wait(0.1)
    subscriber.loop_start()
    assert subscribed.wait(30), "the test broker did not accept the subscriber"
    yield pki, port, received
    subscriber.loop_stop()
    subscriber.disconnect()
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)


def run_fleet(pki, port: int, ca: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local.fleet", "--endpoint", "localhost", "--endpoint-port", str(port),
         "--suffix", SUFFIX, "--device", DEVICE, "--cert", str(pki / f"{DEVICE}.pem"), "--key", str(pki / f"{DEVICE}.key"),
         "--ca", str(pki / f"{ca}.pem"), "--rate", "20", "--duration", "1", "--malformed", "0", "--duplicates", "0",
         "--manifest", str(pki / "manifest.json")],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
    )


def test_the_fleet_publishes_over_tls_with_a_device_certificate_to_its_own_topic(tls_broker):
    pki, port, received = tls_broker
    completed = run_fleet(pki, port, "test-ca")
    assert completed.returncode == 0, completed.stderr[-2000:]
    manifest = json.loads((pki / "manifest.json").read_text())
    assert manifest["published"] == manifest["readings"] == 20 and manifest["publish_failures"] == 0
    for _ in range(100):
        if len(received) >= 20:
            break
        threading.Event().wait(0.1)
    assert {message.topic for message in received} == {telemetry_topic(SUFFIX, DEVICE)}
    assert {json.loads(message.payload)["device_id"] for message in received} == {DEVICE}


def test_the_fleet_refuses_a_server_its_ca_did_not_sign(tls_broker):
    pki, port, _ = tls_broker
    completed = run_fleet(pki, port, "other-ca")
    assert completed.returncode != 0
    assert f"cannot connect to localhost:{port}" in completed.stderr
