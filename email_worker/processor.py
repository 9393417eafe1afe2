"""Process one SQS message and decide what happens to it in the queue."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from email_worker.aws.sqs import ReceivedMessage
from email_worker.errors import PoisonMessageError, TemporaryAwsError, \
    TemporaryError, WorkerError
from email_worker.health.state import DependencyHealth
from email_worker.logs import MessageLogger
from email_worker.mail.notification import IgnoredNotification, classify
from email_worker.pipeline import Step, build_steps, run_steps
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services
from email_worker.pipeline.steps.audit import AuditStep

log = logging.getLogger(__name__)

DELETE = "delete"
RETRY = "retry"
LEAVE_FOR_DLQ = "leave-for-dlq"
MAX_RETRY_DELAY = 900
_BODY_LOG_LIMIT = 500


@dataclass(frozen=True)
class Disposition:
    """The action for the SQS message, with the status to count."""

    action: str
    status: str
    delay: int = 0


class MessageProcessor:
    """Run the pipeline for one message and choose its disposition.

    Bad input and unexpected step errors become a Disposition, so that
    process() does not raise for them.
    """

    def __init__(self, services: Services,
                 steps: list[Step] | None = None,
                 dependencies: DependencyHealth | None = None) -> None:
        self._services = services
        self._settings = services.settings
        self._metrics = services.metrics
        self._steps = steps if steps is not None else build_steps(services)
        self._audit = AuditStep(services)
        self._dependencies = dependencies or DependencyHealth()

    def process(self, domain: str, received: ReceivedMessage,
                has_dead_letter_queue: bool) -> Disposition:
        started = time.monotonic()
        disposition = self._dispose(domain, received, has_dead_letter_queue)
        self._metrics.processing_seconds.labels(domain=domain).observe(
            time.monotonic() - started)
        if disposition.action == DELETE:
            self._metrics.emails_processed.labels(
                domain=domain, status=disposition.status).inc()
        return disposition

    def _dispose(self, domain: str, received: ReceivedMessage,
                 has_dlq: bool) -> Disposition:
        logger = MessageLogger(log, received.message_id, domain)
        try:
            notification = classify(received.body, domain)
        except PoisonMessageError as exc:
            return self._poison(logger, received, has_dlq, exc, None)
        if isinstance(notification, IgnoredNotification):
            logger.info("ignored: %s", notification.reason,
                        extra={"event": "ignored"})
            self._metrics.notifications_ignored.labels(
                domain=domain, reason=notification.reason).inc()
            return Disposition(DELETE, "ignored")
        bucket = notification.bucket or self._settings.bucket_name(domain)
        logger = MessageLogger(log, notification.ses_message_id
                               or received.message_id, domain)
        context = MessageContext(domain=domain, notification=notification,
                                 bucket=bucket, log=logger,
                                 receive_count=received.receive_count)
        return self._run(context, received, has_dlq)

    def _run(self, context: MessageContext, received: ReceivedMessage,
             has_dlq: bool) -> Disposition:
        logger = context.log
        try:
            run_steps(self._steps, context)
        except PoisonMessageError as exc:
            return self._poison(logger, received, has_dlq, exc, context)
        except TemporaryAwsError as exc:
            if self._dependencies.record_failure(exc.service, str(exc)):
                logger.error("AWS %s unavailable, messages are retried "
                             "until it recovers: %s", exc.service, exc)
            return self._retry(received, "temporary")
        except TemporaryError as exc:
            if exc.retry_after is not None:
                logger.info("%s; retry in %d s", exc, exc.retry_after)
                return Disposition(RETRY, "temporary", exc.retry_after)
            logger.warning("temporary failure, will retry: %s", exc,
                           extra={"event": "retry"})
            return self._retry(received, "temporary")
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the poller
            logger.exception("unexpected error in the pipeline")
            return self._poison(logger, received, has_dlq, exc, context)
        self._dependencies.record_success()
        if context.deferred:
            logger.info("%d recipient(s) deferred; retry in %d s",
                        len(context.deferred),
                        self._retry_delay(received.receive_count))
            return self._retry(received, "deferred")
        status = context.status or "failed"
        logger.info("finished with status %s", status,
                    extra={"event": status})
        return Disposition(DELETE, status)

    def _retry(self, received: ReceivedMessage, status: str) -> Disposition:
        return Disposition(RETRY, status,
                           self._retry_delay(received.receive_count))

    def _retry_delay(self, receive_count: int) -> int:
        base = self._settings.retry_delay_seconds
        exponent = min(max(receive_count - 1, 0), 16)
        return int(min(MAX_RETRY_DELAY, base * 2 ** exponent))

    def _poison(self, logger: MessageLogger, received: ReceivedMessage,
                has_dlq: bool, exc: Exception,
                context: MessageContext | None) -> Disposition:
        """Retry a bad message, then park it: DLQ, or failed and deleted."""
        limit = self._settings.max_receive_count
        if received.receive_count < limit:
            logger.warning("cannot process (attempt %d of %d): %s",
                           received.receive_count, limit, exc,
                           extra={"event": "poison"})
            return self._retry(received, "poison")
        body = received.body[:_BODY_LOG_LIMIT]
        if has_dlq:
            logger.error("giving up after %d attempts, leaving it for the "
                         "dead-letter queue: %s; body: %r",
                         received.receive_count, exc, body,
                         extra={"event": "dead_lettered"})
            # SQS moves the message on a receive after its own
            # maxReceiveCount, so it is released with the usual delay
            # rather than at once, which would receive it in a tight loop.
            return Disposition(LEAVE_FOR_DLQ, "dead_lettered",
                               self._retry_delay(received.receive_count))
        logger.error("giving up after %d attempts and deleting it (no "
                     "dead-letter queue): %s; body: %r",
                     received.receive_count, exc, body,
                     extra={"event": "parked"})
        if context is not None:
            self._mark_failed(context, exc)
        return Disposition(DELETE, "failed")

    def _mark_failed(self, context: MessageContext, exc: Exception) -> None:
        if context.stored is None:
            return
        context.status = "failed"
        context.audit["failure_reason"] = str(exc)[:200]
        delivered = context.already_delivered + context.delivered
        try:
            self._services.store.replace_metadata(
                context.stored, self._audit.final_metadata(context,
                                                           delivered))
        except WorkerError as error:
            context.log.error("could not mark the object failed: %s", error)
