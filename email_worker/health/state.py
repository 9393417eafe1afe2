"""Per-domain health counters shared by pollers and the HTTP server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class DomainSnapshot:
    domain: str
    thread_alive: bool
    last_poll: float | None
    processed: int
    failed: int
    last_error: str | None
    error_since: float | None


class DomainHealth:
    """Thread-safe record of one domain's polling and outcomes."""

    def __init__(self, domain: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.domain = domain
        self._clock = clock
        self._lock = threading.Lock()
        self._last_poll: float | None = None
        self._processed = 0
        self._failed = 0
        self._last_error: str | None = None
        self._error_since: float | None = None
        self._alive: Callable[[], bool] = lambda: False

    def watch_thread(self, is_alive: Callable[[], bool]) -> None:
        self._alive = is_alive

    def polled(self) -> None:
        with self._lock:
            self._last_poll = self._clock()
            self._last_error = None
            self._error_since = None

    def record_error(self, error: str) -> bool:
        """Store a polling error; return True when it is a new error."""
        with self._lock:
            is_new = error != self._last_error
            self._last_error = error
            if self._error_since is None:
                self._error_since = self._clock()
            return is_new

    def count(self, status: str) -> None:
        with self._lock:
            if status == "failed":
                self._failed += 1
            else:
                self._processed += 1

    def snapshot(self) -> DomainSnapshot:
        with self._lock:
            return DomainSnapshot(self.domain, self._alive(),
                                  self._last_poll, self._processed,
                                  self._failed, self._last_error,
                                  self._error_since)
