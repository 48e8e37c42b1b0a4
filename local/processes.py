"""Start the local run's helper servers as child processes and wait until they listen."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_module(module: str, port: int, log_path: Path, *args: str, timeout_s: float = 30.0) -> subprocess.Popen:
    """Run `python -m module --port port ...` and wait for the port to accept connections."""
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode}; see {log_path}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{module} did not listen on port {port} within {timeout_s:.0f} s; see {log_path}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
