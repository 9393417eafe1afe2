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


class DependencyHealth:
    """Failures of AWS services seen while processing messages.

    A failure is logged when it first appears and then at most once per
    ``log_interval`` seconds; any message that finishes clears them.
    """

    def __init__(self, log_interval: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._log_interval = log_interval
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[str, float, float]] = {}

    def record_failure(self, service: str, error: str) -> bool:
        """Store a failure; return True when it should be logged now."""
        now = self._clock()
        with self._lock:
            previous = self._failures.get(service)
            if previous is None:
                self._failures[service] = (error, now, now)
                return True
            _error, since, logged = previous
            should_log = now - logged >= self._log_interval
            self._failures[service] = (error, since,
                                       now if should_log else logged)
            return should_log

    def record_success(self) -> None:
        with self._lock:
            self._failures.clear()

    def failures(self) -> dict[str, tuple[str, float]]:
        """Return each failing service with its last error and start time."""
        with self._lock:
            return {service: (error, since) for service, (error, since, _)
                    in self._failures.items()}
