"""A loopback HTTP proxy in front of moto's server that makes AWS slow or refuse, as AWS does.

moto never throttles and always answers at once; a real table throttles, a real
bucket answers `SlowDown`, and any call can take seconds. The processor must
stay within its invocation's time whatever AWS does, so its tests point it at
this proxy (through AWS_ENDPOINT_URL, as at moto itself) and set per operation:

- `latency_s`: the request is forwarded at once (so a write lands), and the
  response is held back this long: what a client that gives up sees as a
  timeout after AWS applied the call;
- `error`: the request is not forwarded; the proxy answers with AWS's own error
  (status, body and content type as the service sends them), so botocore
  parses it exactly as it parses AWS's answer.

Faults are bounded: each applies to at most `times` requests (None: all of
them until cleared), and held responses are released when the proxy stops.
Operations are named `dynamodb.<Operation>` (from the X-Amz-Target header) and
`s3.<Operation>` (PutObject, GetObject, HeadObject, ListObjects, DeleteObject,
from method and path).
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class AwsError:
    """An error answer as AWS sends it."""

    status: int
    content_type: str
    body: bytes


def dynamodb_error(code: str, message: str = "injected by the fault proxy", status: int = 400) -> AwsError:
    """DynamoDB's JSON error body (protocol awsJson1_0): `__type` is the namespaced code."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return AwsError(status, "application/x-amz-json-1.0", body)


def s3_error(code: str, message: str = "injected by the fault proxy", status: int = 503) -> AwsError:
    """S3's XML error body (protocol rest-xml)."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>FAULTPROXY</RequestId><HostId>fault-proxy</HostId></Error>").encode()
    return AwsError(status, "application/xml", body)


THROTTLED = dynamodb_error("ProvisionedThroughputExceededException",
                           "The level of configured provisioned throughput for the table was exceeded.")
SLOW_DOWN = s3_error("SlowDown", "Please reduce your request rate.", 503)


@dataclass
class Fault:
    latency_s: float = 0.0
    error: AwsError | None = None
    times: int | None = None  # requests it applies to; None: every request until cleared


# Longest a response may be held: a test's latency beyond this is a mistake in the test.
MAX_LATENCY_S = 30.0


_S3_OBJECT_OPERATIONS = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
_S3_BUCKET_OPERATIONS = {"GET": "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket"}


def operation_name(method: str, path: str, headers) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        service, _, operation = target.partition(".")
        return f"{'dynamodb' if service.startswith('DynamoDB') else service.lower()}.{operation}"
    segments = [segment for segment in urlsplit(path).path.split("/") if segment]
    names = _S3_OBJECT_OPERATIONS if len(segments) >= 2 else _S3_BUCKET_OPERATIONS  # path style: /bucket/key
    return f"s3.{names.get(method, method)}"


class FaultProxy:
    """Forwards every request to `upstream` (http://host:port), applying the faults set per operation."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname, target.port)
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.seen: list[str] = []  # operations in the order they arrived
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def log_message(self, *args) -> None:  # quiet: the tests read `seen`
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                operation = operation_name(self.command, self.path, self.headers)
                fault = proxy._take(operation)
                if fault is not None and fault.error is not None:
                    self._answer(fault.error.status, [("Content-Type", fault.error.content_type)], fault.error.body)
                    return
                status, headers, answer = proxy._forward(self.command, self.path, self.headers, body)
                if fault is not None and fault.latency_s:
                    proxy._stopping.wait(min(fault.latency_s, MAX_LATENCY_S))
                self._answer(status, headers, answer)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting: that is the point of latency

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases held responses at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set(self, operation: str, *, latency_s: float = 0.0, error: AwsError | None = None,
            times: int | None = None) -> None:
        """Apply a fault to `operation` (`dynamodb.TransactWriteItems`, `s3.PutObject`, ...)."""
        if not 0 <= latency_s <= MAX_LATENCY_S:
            raise ValueError(f"latency_s {latency_s} must be within 0..{MAX_LATENCY_S}")
        with self._lock:
            self._faults[operation] = Fault(latency_s, error, times)

    def clear(self) -> None:
        """Healthy again: every request forwarded at once."""
        with self._lock:
            self._faults.clear()

    def _take(self, operation: str) -> Fault | None:
        with self._lock:
            self.seen.append(operation)
            fault = self._faults.get(operation)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[operation]
            return fault

    def _forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(method, path, body=body,
                               headers={name: value for name, value in headers.items() if name.lower() != "connection"})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()
