"""HTTP server for GET /health and GET /domains."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from email_worker.health.state import (DependencyHealth, DomainHealth,
                                       DomainSnapshot)

log = logging.getLogger(__name__)

# A receive that keeps failing for this long makes the domain unhealthy
# even before its last successful poll turns stale.
POLL_ERROR_GRACE = 30.0


class HealthReport:
    """Decide whether the worker is healthy from the domain records.

    A domain is unhealthy when its thread is dead, when it has not
    completed a receive for ``stale_after`` seconds, when its receives
    have failed for POLL_ERROR_GRACE seconds, or while shutting down.  The worker is also unhealthy while an AWS service has failed
    for longer than ``dependency_grace`` seconds.
    """

    def __init__(self, worker_name: str, domains: list[DomainHealth],
                 domain_info: Callable[[], list[dict[str, Any]]],
                 stale_after: float,
                 dependencies: DependencyHealth | None = None,
                 dependency_grace: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.worker_name = worker_name
        self.domains = domains
        self.domain_info = domain_info
        self.stale_after = stale_after
        self.started = clock()
        self.shutting_down = False
        self.dependencies = dependencies or DependencyHealth()
        self.dependency_grace = dependency_grace
        self._clock = clock

    def health(self) -> tuple[int, dict[str, Any]]:
        now = self._clock()
        entries = {}
        healthy = not self.shutting_down
        for domain in self.domains:
            snapshot = domain.snapshot()
            entry = self._entry(snapshot, now)
            healthy = healthy and entry["healthy"]
            entries[snapshot.domain] = entry
        failing = self._failing_dependencies(now)
        healthy = healthy and not any(f["unhealthy"] for f in
                                      failing.values())
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "worker": self.worker_name,
            "uptime_seconds": round(now - self.started, 1),
            "shutting_down": self.shutting_down,
            "domains": entries,
            "failing_dependencies": failing,
        }
        return (200 if healthy else 503), body

    def _failing_dependencies(self, now: float) -> dict[str, Any]:
        return {service: {"error": error, "since": _iso(since),
                          "unhealthy": now - since > self.dependency_grace}
                for service, (error, since)
                in self.dependencies.failures().items()}

    def _entry(self, snapshot: DomainSnapshot, now: float) -> dict[str, Any]:
        reference = snapshot.last_poll or self.started
        stale = now - reference > self.stale_after
        failing = (snapshot.error_since is not None
                   and now - snapshot.error_since > POLL_ERROR_GRACE)
        return {
            "healthy": snapshot.thread_alive and not stale and not failing,
            "thread_alive": snapshot.thread_alive,
            "last_poll": _iso(snapshot.last_poll),
            "poll_stale": stale,
            "processed": snapshot.processed,
            "failed": snapshot.failed,
            "last_error": snapshot.last_error,
        }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(
        timespec="seconds")


class _Handler(BaseHTTPRequestHandler):
    report: HealthReport

    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            status, body = self.report.health()
            self._send(status, body)
        elif path == "/domains":
            self._send(200, self.report.domain_info())
        else:
            self._send(404, {"error": f"not found: {path or '/'}"})

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health request from %s: " + format,
                  self.client_address[0], *args)


class HealthServer:
    """Serve the report from a daemon thread; stop() is safe twice."""

    def __init__(self, report: HealthReport, address: str,
                 port: int) -> None:
        handler = type("HealthHandler", (_Handler,), {"report": report})
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="health-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
