"""Record the outcome on the S3 object and settle the final status."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from email_worker.errors import WorkerError
from email_worker.mail.metadata import merge_metadata
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services


def final_status(delivered: list[str], blocked: list[str],
                 failed: list[str]) -> str:
    """Return delivered, partial, blocked or failed."""
    if delivered:
        return "partial" if blocked or failed else "delivered"
    if blocked and not failed:
        return "blocked"
    return "failed"


class AuditStep:
    """Write the audit metadata; delete the object when all are blocked.

    While some recipients are deferred the outcome is not final: then
    only the recipients delivered so far are recorded, so that the retry
    skips them, and ``processed`` stays unset.
    """

    name = "audit"

    def __init__(self, services: Services,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._store = services.store
        self._metrics = services.metrics
        self._worker_name = services.settings.worker_name
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def process(self, context: MessageContext) -> None:
        if context.stored is None:
            raise RuntimeError("audit step ran before the fetch step")
        if context.deferred:
            self._record_progress(context)
            return
        delivered = context.already_delivered + context.delivered
        context.status = final_status(delivered, list(context.blocked),
                                      list(context.failed))
        self._write(context, self.final_metadata(context, delivered))
        if context.status == "blocked":
            self._store.delete(context.bucket, context.notification.key)
            context.log.info("every recipient blocked; object deleted")

    def final_metadata(self, context: MessageContext,
                       delivered: list[str]) -> dict[str, str]:
        fields = {
            "processed": "true",
            "processed_at": self._clock().isoformat(timespec="seconds"),
            "processed_by": self._worker_name,
            "status": context.status or "failed",
        }
        if context.blocked:
            fields["blocked_sender"] = next(iter(context.blocked.values()))
        fields.update(context.audit)
        return merge_metadata(
            context.stored.metadata if context.stored else {}, fields,
            {"delivered_to": delivered,
             "blocked_recipients": list(context.blocked),
             "failed_recipients": list(context.failed),
             "forwarded_to": context.already_forwarded + context.forwarded})

    def _record_progress(self, context: MessageContext) -> None:
        if context.stored is None:
            return
        if not context.delivered and not context.forwarded:
            return
        metadata = merge_metadata(context.stored.metadata, {}, {
            "delivered_to": context.already_delivered + context.delivered,
            "forwarded_to": context.already_forwarded + context.forwarded})
        self._write(context, metadata)

    def _write(self, context: MessageContext,
               metadata: dict[str, str]) -> None:
        """Write metadata; after mail went out, a failure is only logged.

        Raising after a delivery would make the retry deliver again, so
        the outcome is kept without its record.  When nothing was
        sent, the error propagates and the message is retried.
        """
        assert context.stored is not None
        try:
            self._store.replace_metadata(context.stored, metadata)
        except WorkerError as exc:
            if not context.delivered and not context.forwarded:
                raise
            self._metrics.audit_failures.labels(domain=context.domain).inc()
            context.log.error("mail was sent but the audit metadata could "
                              "not be written; the outcome stands: %s", exc)
