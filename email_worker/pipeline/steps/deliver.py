"""Deliver the message bytes to the remaining recipients over SMTP."""

from __future__ import annotations

from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services


class DeliverStep:
    """Send to SMTP_HOST:SMTP_PORT and record the outcome per recipient."""

    name = "deliver"

    def __init__(self, services: Services) -> None:
        self._smtp = services.smtp
        self._metrics = services.metrics

    def process(self, context: MessageContext) -> None:
        pending = context.pending
        if not pending:
            return
        result = self._smtp.send(context.sender, pending, context.body)
        context.delivered += result.delivered
        context.failed.update(result.permanent)
        context.deferred.update(result.temporary)
        self._count_errors(context.domain, result.connection_error,
                           len(result.permanent), len(result.temporary))
        if result.connection_error:
            context.log.warning("SMTP %s:%s unavailable, will retry: %s",
                                self._smtp.host, self._smtp.port,
                                result.connection_error)
        for recipient, reply in result.permanent.items():
            context.log.warning("recipient %s rejected permanently: %s",
                                recipient, reply)
        if not result.connection_error:
            for recipient, reply in result.temporary.items():
                context.log.warning("recipient %s deferred: %s",
                                    recipient, reply)
        if result.delivered:
            context.log.info("delivered to %s", ",".join(result.delivered))

    def _count_errors(self, domain: str, connection_error: str | None,
                      permanent: int, temporary: int) -> None:
        errors = self._metrics.smtp_errors
        if connection_error:
            errors.labels(domain=domain, kind="connection").inc()
            return
        if permanent:
            errors.labels(domain=domain, kind="permanent").inc(permanent)
        if temporary:
            errors.labels(domain=domain, kind="temporary").inc(temporary)
