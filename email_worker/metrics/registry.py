"""Prometheus metrics of the worker and the server that exposes them."""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               start_http_server)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    """All metrics, registered on one registry per worker instance."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        reg = self.registry
        self.emails_processed = Counter(
            "emails_processed_total", "Messages finished, by outcome.",
            ["domain", "status"], registry=reg)
        self.emails_in_flight = Gauge(
            "emails_in_flight", "Messages being processed now.",
            ["domain"], registry=reg)
        self.processing_seconds = Histogram(
            "email_processing_seconds",
            "Time from receiving a message to its outcome, in seconds.",
            ["domain"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.recipients_blocked = Counter(
            "recipients_blocked_total",
            "Recipients dropped because a blocklist pattern matched.",
            ["domain"], registry=reg)
        self.bounces_rewritten = Counter(
            "bounces_rewritten_total",
            "SES bounce reports rewritten to come from the failed address.",
            ["domain"], registry=reg)
        self.autoreplies_sent = Counter(
            "autoreplies_sent_total", "Out-of-office replies sent.",
            ["domain"], registry=reg)
        self.autoreplies_suppressed = Counter(
            "autoreplies_suppressed_total",
            "Out-of-office replies not sent, by reason.",
            ["domain", "reason"], registry=reg)
        self.bounces_unmatched = Counter(
            "bounces_unmatched_total",
            "SES bounce reports delivered unchanged because no tracking "
            "item was found in time.", ["domain"], registry=reg)
        self.forwards_suppressed = Counter(
            "forwards_suppressed_total", "Forwards not sent, by reason.",
            ["domain", "reason"], registry=reg)
        self.forwards_sent = Counter(
            "forwards_sent_total", "Forwarded copies sent.",
            ["domain"], registry=reg)
        self.smtp_errors = Counter(
            "smtp_errors_total",
            "SMTP failures, by kind (temporary, permanent, connection).",
            ["domain", "kind"], registry=reg)
        self.smtp_connections = Counter(
            "smtp_connections_opened_total", "SMTP connections opened.",
            ["port"], registry=reg)
        self.aws_api_calls = Counter(
            "aws_api_calls_total", "AWS API operations called.",
            ["service", "operation"], registry=reg)
        self.queue_messages = Gauge(
            "sqs_queue_messages",
            "Messages waiting in the domain's queue (approximate).",
            ["domain"], registry=reg)
        self.last_poll = Gauge(
            "worker_last_poll_timestamp_seconds",
            "Unix time of the domain's last successful SQS receive.",
            ["domain"], registry=reg)
        self.audit_failures = Counter(
            "audit_write_failures_total",
            "Audit metadata writes that failed after mail was sent.",
            ["domain"], registry=reg)
        self.notifications_ignored = Counter(
            "notifications_ignored_total",
            "Test and set-up notifications acknowledged without work.",
            ["domain", "reason"], registry=reg)

    def prepare_domain(self, domain: str) -> None:
        """Create the per-domain series so that they show before traffic."""
        for metric in (self.recipients_blocked, self.bounces_rewritten,
                       self.autoreplies_sent, self.forwards_sent):
            metric.labels(domain=domain)
        self.emails_in_flight.labels(domain=domain)
        self.queue_messages.labels(domain=domain)
        self.last_poll.labels(domain=domain)
        self.processing_seconds.labels(domain=domain)

    def count_aws_call(self, service: str, operation: str) -> None:
        self.aws_api_calls.labels(service=service,
                                  operation=operation).inc()

    def serve(self, address: str, port: int) -> None:
        """Start the /metrics server in a daemon thread."""
        start_http_server(port, addr=address, registry=self.registry)
