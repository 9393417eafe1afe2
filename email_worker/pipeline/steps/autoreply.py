"""Send out-of-office replies for recipients whose rule enables them."""

from __future__ import annotations

from typing import Any

from email_worker.errors import WorkerError
from email_worker.mail.autoreply import build_reply, suppression_reason
from email_worker.mail.rules import flag
from email_worker.mail.headers import header_values
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services

DEFAULT_PERIOD_DAYS = 7


class AutoReplyStep:
    """Reply at most once per (recipient, sender) and reply period.

    A reply that fails to send is logged and counted but does not hold
    the message back: its delivery matters more than the reply.
    """

    name = "autoreply"

    def __init__(self, services: Services) -> None:
        self._smtp = services.smtp
        self._reply_log = services.reply_log
        self._metrics = services.metrics

    def process(self, context: MessageContext) -> None:
        for recipient in context.pending:
            rule = context.rules.rules.get(recipient)
            if not rule or not flag(rule, "ooo_active"):
                continue
            if not isinstance(rule.get("ooo_message"), str):
                self._metrics.autoreplies_suppressed.labels(
                    domain=context.domain, reason="invalid_rule").inc()
                context.log.warning("rule of %s: ooo_active is set but "
                                    "ooo_message is not a string; no reply",
                                    recipient)
                continue
            try:
                self._reply(context, recipient, rule)
            except WorkerError:
                raise
            except Exception:  # noqa: BLE001 - delivery must go on
                context.log.exception("out-of-office reply from %s failed; "
                                      "delivery continues", recipient)

    def _reply(self, context: MessageContext, recipient: str,
               rule: dict[str, Any]) -> None:
        reason = "dsn" if context.is_dsn else suppression_reason(
            context.headers, context.sender, recipient, _verdicts(context))
        if reason is None and not self._reply_log.claim(
                recipient, context.sender, _period_seconds(rule)):
            reason = "recently_replied"
        if reason is not None:
            self._metrics.autoreplies_suppressed.labels(
                domain=context.domain, reason=reason).inc()
            context.log.info("no out-of-office reply from %s: %s",
                             recipient, reason)
            return
        reply = build_reply(context.headers, recipient, context.sender, rule)
        result = self._smtp.send(recipient, [context.sender], reply)
        if result.delivered:
            self._metrics.autoreplies_sent.labels(domain=context.domain).inc()
            context.log.info("out-of-office reply sent from %s to %s",
                             recipient, context.sender)
            return
        self._metrics.smtp_errors.labels(domain=context.domain,
                                         kind="autoreply").inc()
        context.log.warning("out-of-office reply from %s failed: %s",
                            recipient, result.connection_error or {
                                **result.permanent, **result.temporary})


def _verdicts(context: MessageContext) -> dict[str, str]:
    """Return verdicts from the notification, else from SES's headers."""
    if context.notification.verdicts:
        return context.notification.verdicts
    verdicts = {}
    for name in ("spam", "virus"):
        values = header_values(context.headers,
                               f"X-SES-{name.capitalize()}-Verdict")
        if values:
            verdicts[name] = values[0].strip().upper()
    return verdicts


def _period_seconds(rule: dict[str, Any]) -> float:
    try:
        days = float(rule.get("ooo_days", DEFAULT_PERIOD_DAYS))
    except (TypeError, ValueError):
        days = DEFAULT_PERIOD_DAYS
    # RFC 5230 section 4.1: out-of-range periods are clamped, minimum 1 day.
    return max(1.0, min(days, 365.0)) * 86_400
