"""An SMTP server for the benchmark that records arrival times only.

Keeping every message in memory would make the sink, not the worker,
the memory cost, so it stores the X-Bench-Id header and the time.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller

from devstack.smtp_sink import DATA_SIZE_LIMIT

_BENCH_ID = re.compile(rb"^X-Bench-Id: (\d+)\r?$", re.MULTILINE)


class _Handler:
    def __init__(self, sink: "TimingSink") -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any,
                          envelope: Any) -> str:
        head = bytes(envelope.content[:4096])
        match = _BENCH_ID.search(head)
        self._sink.record(int(match.group(1)) if match else -1,
                          len(envelope.content))
        return "250 OK"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any,
                          hostname: str, responses: list[str]) -> list[str]:
        self._sink.count_connection()
        session.host_name = hostname
        return responses


class TimingSink:
    """Record when each benchmark message arrives and how many bytes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: dict[int, float] = {}
        self.connections = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1",
                                      port=port,
                                      data_size_limit=DATA_SIZE_LIMIT)

    def start(self) -> "TimingSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def record(self, bench_id: int, size: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.arrivals.setdefault(bench_id, now)
            self.bytes += size

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def delivered(self) -> int:
        with self._lock:
            return len(self.arrivals)
