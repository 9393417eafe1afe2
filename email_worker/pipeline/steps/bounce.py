"""Rewrite SES bounce reports so they come from the address that failed."""

from __future__ import annotations

from email_worker.aws.tracking import bounced_recipients
from email_worker.errors import BounceNotTrackedError
from email_worker.mail.dsn import SesBounce, is_ses_dsn, read_ses_bounce
from email_worker.mail.rewrite import header_fields, replace_first_field
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services

# The DSN and the SNS bounce notification are produced in parallel, so the
# tracking item may appear a little after the DSN.  Retry for about a
# minute, then deliver the report unchanged.
RETRY_DELAY_SECONDS = 10
MAX_WAIT_SECONDS = 60


class BounceRewriteStep:
    """Give an SES DSN the failed recipient as its From address.

    Only the From field changes; its old value is kept as
    X-Original-From, and every other byte of the message stays as it was.
    """

    name = "bounce"

    def __init__(self, services: Services) -> None:
        self._bounces = services.bounces
        self._metrics = services.metrics

    def process(self, context: MessageContext) -> None:
        if context.headers is None or not is_ses_dsn(context.headers):
            return
        context.is_dsn = True
        report = read_ses_bounce(context.body)
        if not report.original_message_id or not report.failed_recipients:
            context.log.info("SES DSN without an original ID or a failed "
                             "recipient; delivered unchanged")
            return
        item = self._bounces.find(report.original_message_id)
        if item is None and not self._bounces.available:
            self._metrics.bounces_unmatched.labels(
                domain=context.domain).inc()
            return
        if item is None:
            self._handle_missing_item(context, report)
            return
        failed = _choose_recipient(report, bounced_recipients(item))
        context.body = rewrite_from(context.body, failed)
        context.audit["bounce_rewritten"] = "true"
        self._metrics.bounces_rewritten.labels(domain=context.domain).inc()
        context.log.info("bounce for SES message %s rewritten to come from "
                         "%s", report.original_message_id, failed)

    def _handle_missing_item(self, context: MessageContext,
                             report: SesBounce) -> None:
        waited = (context.receive_count - 1) * RETRY_DELAY_SECONDS
        if waited < MAX_WAIT_SECONDS:
            raise BounceNotTrackedError(report.original_message_id or "",
                                        RETRY_DELAY_SECONDS)
        self._metrics.bounces_unmatched.labels(domain=context.domain).inc()
        context.log.warning("no bounce item for SES message %s after %d "
                            "attempts; delivered unchanged",
                            report.original_message_id,
                            context.receive_count)


def _choose_recipient(report: SesBounce, tracked: list[str]) -> str:
    """Return the first failed recipient the item lists, else the first."""
    for recipient in report.failed_recipients:
        if recipient in tracked:
            return recipient
    return report.failed_recipients[0]


def rewrite_from(raw: bytes, new_sender: str) -> bytes:
    """Replace From with ``new_sender`` and keep the old value."""
    old = next(f for f in header_fields(raw) if f.name == "from")
    old_value = raw[old.start:old.end].split(b":", 1)[1].strip(b" \t\r\n")
    return replace_first_field(raw, "from", [
        b"From: " + new_sender.encode("ascii", "replace"),
        b"X-Original-From: " + old_value])
