"""Assemble the worker, run it until a signal, and stop it in time."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from email_worker.aws.clients import create_clients
from email_worker.aws.dynamodb import RulesStore
from email_worker.aws.s3 import MessageStore
from email_worker.aws.sqs import DomainQueue
from email_worker.aws.tracking import BounceStore, ReplyLog
from email_worker.config import Settings
from email_worker.health.server import HealthReport, HealthServer
from email_worker.health.state import DependencyHealth, DomainHealth
from email_worker.metrics.registry import WorkerMetrics
from email_worker.pipeline.services import Services
from email_worker.poller import DomainPoller
from email_worker.processor import MessageProcessor
from email_worker.smtp.delivery import SmtpSender
from email_worker.systemd import SystemdNotifier

log = logging.getLogger(__name__)


class Worker:
    """One polling thread per domain plus the health and metrics servers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.metrics = WorkerMetrics()
        clients = create_clients(settings, self.metrics)

        smtp = SmtpSender(
            settings.smtp_host, settings.smtp_port, settings.smtp_timeout,
            settings.smtp_user, settings.smtp_pass, settings.smtp_use_tls,
            on_connect=lambda: self._count_smtp_connection(
                settings.smtp_port))
        # Forwards to served domains go to a local port that needs no
        # authentication or TLS, so only the relay gets the credentials.
        internal_smtp = SmtpSender(
            settings.smtp_host, settings.internal_smtp_port,
            settings.smtp_timeout,
            on_connect=lambda: self._count_smtp_connection(
                settings.internal_smtp_port))
        self._smtp_senders = (smtp, internal_smtp)

        services = Services(
            settings=settings, store=MessageStore(clients.s3),
            rules=RulesStore(clients.dynamodb, settings.rules_table,
                             settings.blocked_table),
            smtp=smtp, metrics=self.metrics, internal_smtp=internal_smtp,
            bounces=BounceStore(clients.dynamodb, settings.messages_table),
            reply_log=ReplyLog(clients.dynamodb, settings.autoreply_table))
        dependencies = DependencyHealth()
        processor = MessageProcessor(services, dependencies=dependencies)

        self.pollers: list[DomainPoller] = []
        healths: list[DomainHealth] = []
        for domain in settings.domains:
            self.metrics.prepare_domain(domain)
            health = DomainHealth(domain)
            healths.append(health)
            self.pollers.append(DomainPoller(
                domain, DomainQueue(clients.sqs, settings.queue_name(domain)),
                processor, settings, self.metrics, health, self.stop_event))

        self.report = HealthReport(
            settings.worker_name, healths, self._domain_info,
            stale_after=settings.poll_wait_seconds + 60,
            dependencies=dependencies)
        self._health_server: HealthServer | None = None

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the exit status."""
        self._install_signal_handlers()
        try:
            self.start()
        except OSError as exc:
            log.error("cannot start the HTTP servers on %s (HEALTH_PORT "
                      "%d, METRICS_PORT %d): %s", self.settings.http_bind,
                      self.settings.health_port, self.settings.metrics_port,
                      exc)
            self.stop_event.set()
            if self._health_server is not None:
                self._health_server.stop()
            return 1
        notifier = SystemdNotifier()
        notifier.ready()
        while not self.stop_event.wait(1.0):
            # The watchdog is fed only while every polling thread runs, so
            # systemd restarts a worker whose polling has died (an AWS
            # outage is not a reason to restart).
            if notifier.watchdog_interval and all(
                    p.is_alive() for p in self.pollers):
                notifier.watchdog()
        notifier.stopping()
        self.shutdown()
        return 0

    def start(self) -> None:
        settings = self.settings
        self._health_server = HealthServer(self.report, settings.http_bind,
                                           settings.health_port)
        self._health_server.start()
        self.metrics.serve(settings.http_bind, settings.metrics_port)
        for poller in self.pollers:
            poller.start()
        log.info("worker %s started for %s; health on %s:%d, metrics on "
                 "%s:%d", settings.worker_name, ", ".join(settings.domains),
                 settings.http_bind, settings.health_port,
                 settings.http_bind, settings.metrics_port)

    def shutdown(self) -> None:
        """Finish in-flight work within SHUTDOWN_TIMEOUT, release the rest."""
        self.stop_event.set()
        self.report.shutting_down = True
        # Part of SHUTDOWN_TIMEOUT is kept for releasing unfinished
        # messages and closing connections, so the exit stays within it.
        timeout = self.settings.shutdown_timeout
        deadline = time.monotonic() + timeout - min(2.0, timeout / 4)
        log.info("shutting down; waiting up to %.0f s for in-flight "
                 "messages", self.settings.shutdown_timeout)
        while time.monotonic() < deadline and any(
                p.in_flight_count() for p in self.pollers):
            time.sleep(0.1)
        for poller in self.pollers:
            # A receive already under way returns within
            # POLL_WAIT_SECONDS; its messages are released, not kept.
            poller.wait_for_poll_thread(deadline - time.monotonic())
        for poller in self.pollers:
            poller.close()
        for sender in self._smtp_senders:
            sender.close_all()
        if self._health_server is not None:
            self._health_server.stop()
        log.info("worker %s stopped", self.settings.worker_name)

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def _domain_info(self) -> list[dict[str, object]]:
        return [{"domain": poller.domain,
                 "queue_url": poller.queue_url,
                 "queue_name": self.settings.queue_name(poller.domain),
                 "bucket": self.settings.bucket_name(poller.domain),
                 "worker_threads": self.settings.worker_threads}
                for poller in self.pollers]

    def _count_smtp_connection(self, port: int) -> None:
        self.metrics.smtp_connections.labels(port=str(port)).inc()
