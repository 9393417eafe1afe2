"""/health, /domains and /metrics as an operator and Prometheus see them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (Stack, WorkerProcess, build_message,
                                metric_names, open_stack)

pytestmark = pytest.mark.e2e

SPEC_METRICS = (
    "emails_processed_total", "emails_in_flight", "email_processing_seconds",
    "recipients_blocked_total", "bounces_rewritten_total",
    "autoreplies_sent_total", "autoreplies_suppressed_total",
    "forwards_sent_total", "smtp_errors_total", "aws_api_calls_total",
    "sqs_queue_messages", "worker_last_poll_timestamp_seconds",
)
MESSAGES_PER_DOMAIN = 3


@pytest.fixture(scope="module")
def served(moto_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Stack, WorkerProcess]]:
    """Yield a worker that has delivered a few messages on both domains."""
    with open_stack(moto_url, tmp_path_factory.mktemp("http")) as stack:
        worker = stack.start_worker(WORKER_THREADS="3")
        for number in range(MESSAGES_PER_DOMAIN):
            for domain in stack.domains:
                # Two recipients per message: still one BatchGetItem.
                recipients = [f"a{number}@{domain}", f"b{number}@{domain}"]
                stack.deliver(domain, build_message(
                    "dave@sender.example", recipients[0], f"n{number}"),
                    "dave@sender.example", recipients)
        stack.wait_received(2 * MESSAGES_PER_DOMAIN)
        stack.wait_drained()
        yield stack, worker


def health(served: tuple[Stack, WorkerProcess]) -> tuple[int, Any]:
    return served[1].get_json("/health")


def domains(served: tuple[Stack, WorkerProcess]) -> list[dict[str, Any]]:
    status, body = served[1].get_json("/domains")
    assert status == 200
    return list(body)


def test_health_returns_200(served: tuple[Stack, WorkerProcess]) -> None:
    assert health(served)[0] == 200


def test_health_status_healthy(served: tuple[Stack, WorkerProcess]) -> None:
    assert health(served)[1]["status"] == "healthy"


def test_health_names_worker(served: tuple[Stack, WorkerProcess]) -> None:
    assert health(served)[1]["worker"] == served[0].worker_name


def test_health_reports_uptime(served: tuple[Stack, WorkerProcess]) -> None:
    assert health(served)[1]["uptime_seconds"] > 0


def test_health_lists_both_domains(
        served: tuple[Stack, WorkerProcess]) -> None:
    assert sorted(health(served)[1]["domains"]) == sorted(served[0].domains)


def test_health_domain_threads_alive(
        served: tuple[Stack, WorkerProcess]) -> None:
    entries = health(served)[1]["domains"].values()
    assert [e["thread_alive"] for e in entries] == [True, True]


def test_health_domain_last_poll_set(
        served: tuple[Stack, WorkerProcess]) -> None:
    entries = health(served)[1]["domains"].values()
    assert all(e["last_poll"] for e in entries)


def test_health_counts_processed(
        served: tuple[Stack, WorkerProcess]) -> None:
    entries = health(served)[1]["domains"]
    counts = [entries[d]["processed"] for d in served[0].domains]
    assert counts == [MESSAGES_PER_DOMAIN, MESSAGES_PER_DOMAIN]


def test_domains_lists_both(served: tuple[Stack, WorkerProcess]) -> None:
    assert [d["domain"] for d in domains(served)] == \
        list(served[0].domains)


def test_domains_queue_urls(served: tuple[Stack, WorkerProcess]) -> None:
    stack = served[0]
    assert [d["queue_url"] for d in domains(served)] == \
        [stack.queues[d] for d in stack.domains]


def test_domains_buckets(served: tuple[Stack, WorkerProcess]) -> None:
    stack = served[0]
    assert [d["bucket"] for d in domains(served)] == \
        [stack.bucket(d) for d in stack.domains]


def test_domains_worker_threads(served: tuple[Stack, WorkerProcess]) -> None:
    assert [d["worker_threads"] for d in domains(served)] == [3, 3]


def test_metrics_expose_every_spec_name(
        served: tuple[Stack, WorkerProcess]) -> None:
    exposed = metric_names(served[1].metrics_text())
    assert [name for name in SPEC_METRICS if name not in exposed] == []


def test_metrics_processing_time_is_histogram(
        served: tuple[Stack, WorkerProcess]) -> None:
    text = served[1].metrics_text()
    assert "# TYPE email_processing_seconds histogram" in text


def test_metrics_one_batch_get_item_per_message(
        served: tuple[Stack, WorkerProcess]) -> None:
    calls = served[1].metric("aws_api_calls_total", service="dynamodb",
                             operation="BatchGetItem")
    assert calls == 2 * MESSAGES_PER_DOMAIN


def test_metrics_count_delivered_per_domain(
        served: tuple[Stack, WorkerProcess]) -> None:
    stack, worker = served
    counts = [worker.metric("emails_processed_total", domain=d,
                            status="delivered") for d in stack.domains]
    assert counts == [MESSAGES_PER_DOMAIN, MESSAGES_PER_DOMAIN]


def test_metrics_last_poll_is_recent(
        served: tuple[Stack, WorkerProcess]) -> None:
    stack, worker = served
    stamps = [worker.metric("worker_last_poll_timestamp_seconds", domain=d)
              for d in stack.domains]
    assert min(stamps) > 0
