"""One writer for the processor's EMF lines in the local run, safe for many threads.

In Lambda each invocation has stdout to itself. Locally one process runs a
poller thread per shard, each invoking the handler; a text stream shared by
those threads (sys.stdout pointed at a file) can interleave their lines or
write garbage, since CPython's buffered text writer is not thread-safe. Here
each invocation's lines are encoded first and written to a binary file under
one lock, in one call, so a line is never split or mixed with another.
"""

from __future__ import annotations

import threading
from pathlib import Path

from handler import metrics


class MetricLineSink:
    """Appends whole EMF documents to `path`; `install()` makes the handler write here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "wb")
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            if self._file.closed:
                return  # a poller still finishing after an aborted run: the summary is not coming
            self._file.write(data)
            self.lines += text.count("\n")

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def install(self) -> None:
        metrics.set_sink(self.write)

    def close(self) -> None:
        metrics.set_sink(None)
        with self._lock:
            self._file.close()
