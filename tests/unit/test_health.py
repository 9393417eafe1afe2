"""GET /health returns 200 only while every domain thread polls."""

from __future__ import annotations

import http.client
import json

import pytest

from devstack.ports import free_port
from email_worker.health.server import HealthReport, HealthServer
from email_worker.health.state import DomainHealth

STALE_AFTER = 60.0
START = 1_000_000.0


class Clock:
    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now


def domain_health(clock, name="example.com", alive=True, polled=True):
    health = DomainHealth(name, clock=clock)
    health.watch_thread(lambda: alive)
    if polled:
        health.polled()
    return health


def domain_info():
    return [{"domain": "example.com",
             "queue_url": "http://127.0.0.1:5000/1/example-com-queue",
             "bucket": "example-com-emails", "worker_threads": 4}]


def make_report(*domains, clock):
    return HealthReport("worker-test", list(domains), domain_info,
                        STALE_AFTER, clock=clock)


def test_healthy_returns_200():
    clock = Clock()
    status, body = make_report(domain_health(clock), clock=clock).health()
    assert status == 200
    assert body["status"] == "healthy"


def test_body_fields():
    clock = Clock()
    report = make_report(domain_health(clock), clock=clock)
    clock.now += 12.5
    _, body = report.health()
    assert body["worker"] == "worker-test"
    assert body["uptime_seconds"] == 12.5
    assert body["shutting_down"] is False


def test_domain_entry_fields():
    clock = Clock()
    health = domain_health(clock)
    health.count("delivered")
    health.count("ignored")
    health.count("failed")
    _, body = make_report(health, clock=clock).health()
    entry = body["domains"]["example.com"]
    assert entry["thread_alive"] is True
    assert entry["last_poll"] == "1970-01-12T13:46:40+00:00"
    assert entry["processed"] == 2
    assert entry["failed"] == 1


def test_dead_thread_returns_503():
    clock = Clock()
    status, body = make_report(domain_health(clock, alive=False),
                               clock=clock).health()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["domains"]["example.com"]["thread_alive"] is False


def test_one_dead_domain_makes_worker_unhealthy():
    clock = Clock()
    report = make_report(domain_health(clock),
                         domain_health(clock, "example.org", alive=False),
                         clock=clock)
    status, body = report.health()
    assert status == 503
    assert body["domains"]["example.com"]["healthy"] is True
    assert body["domains"]["example.org"]["healthy"] is False


def test_stale_poll_returns_503():
    clock = Clock()
    report = make_report(domain_health(clock), clock=clock)
    clock.now += STALE_AFTER + 1
    status, body = report.health()
    assert status == 503
    assert body["domains"]["example.com"]["poll_stale"] is True


def test_poll_at_limit_still_healthy():
    clock = Clock()
    report = make_report(domain_health(clock), clock=clock)
    clock.now += STALE_AFTER
    assert report.health()[0] == 200


def test_recent_poll_restores_health():
    clock = Clock()
    health = domain_health(clock)
    report = make_report(health, clock=clock)
    clock.now += STALE_AFTER + 1
    health.polled()
    assert report.health()[0] == 200


def test_no_poll_yet_healthy_at_start():
    clock = Clock()
    report = make_report(domain_health(clock, polled=False), clock=clock)
    status, body = report.health()
    assert status == 200
    assert body["domains"]["example.com"]["last_poll"] is None


def test_no_poll_after_start_grace_returns_503():
    clock = Clock()
    report = make_report(domain_health(clock, polled=False), clock=clock)
    clock.now += STALE_AFTER + 1
    assert report.health()[0] == 503


def test_shutting_down_returns_503():
    clock = Clock()
    report = make_report(domain_health(clock), clock=clock)
    report.shutting_down = True
    status, body = report.health()
    assert status == 503
    assert body["shutting_down"] is True


def test_record_error_new_then_repeated():
    health = DomainHealth("example.com", clock=Clock())
    assert health.record_error("queue missing") is True
    assert health.record_error("queue missing") is False
    assert health.record_error("access denied") is True


def test_poll_clears_error():
    health = domain_health(Clock())
    health.record_error("queue missing")
    health.polled()
    assert health.snapshot().last_error is None


@pytest.fixture(scope="module")
def running_server():
    # One server serves the whole module, because each stop waits up to
    # 0.5 s for the serve_forever poll interval.
    clock = Clock()
    health = domain_health(clock)
    report = make_report(health, clock=clock)
    port = free_port()
    server = HealthServer(report, "127.0.0.1", port)
    server.start()
    yield report, health, port
    server.stop()


@pytest.fixture
def served(running_server):
    report, health, port = running_server
    report.shutting_down = False
    health.watch_thread(lambda: True)
    health.polled()
    return report, health, port


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return (response.status, response.getheader("Content-Type"),
                json.loads(response.read()))
    finally:
        connection.close()


def test_http_health_200(served):
    _, _, port = served
    status, content_type, body = get(port, "/health")
    assert status == 200
    assert content_type == "application/json"
    assert body["status"] == "healthy"


def test_http_health_503_for_dead_thread(served):
    _, health, port = served
    health.watch_thread(lambda: False)
    status, _, body = get(port, "/health")
    assert status == 503
    assert body["status"] == "unhealthy"


def test_http_health_503_while_shutting_down(served):
    report, _, port = served
    report.shutting_down = True
    assert get(port, "/health")[0] == 503


def test_http_health_query_and_slash_accepted(served):
    _, _, port = served
    assert get(port, "/health/?verbose=1")[0] == 200


def test_http_domains(served):
    _, _, port = served
    status, _, body = get(port, "/domains")
    assert status == 200
    assert body == domain_info()


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz"])
def test_http_unknown_path_404(served, path):
    _, _, port = served
    status, _, body = get(port, path)
    assert status == 404
    assert "error" in body


def test_server_stop_twice_is_safe():
    clock = Clock()
    server = HealthServer(make_report(domain_health(clock), clock=clock),
                          "127.0.0.1", free_port())
    server.start()
    server.stop()
    server.stop()


def test_server_stop_closes_port():
    clock = Clock()
    port = free_port()
    server = HealthServer(make_report(domain_health(clock), clock=clock),
                          "127.0.0.1", port)
    server.start()
    server.stop()
    with pytest.raises(OSError):
        get(port, "/health")
