"""Send copies to the addresses in each recipient's forwards rule."""

from __future__ import annotations

from email_worker.errors import WorkerError
from email_worker.mail.addresses import domain_of, normalise
from email_worker.mail.autoreply import is_auto_submitted
from email_worker.mail.forward import (external_copy, internal_copy,
                                       loop_markers, received_hops)
from email_worker.mail.rules import string_list
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services

MAX_RECEIVED_HOPS = 30


class ForwardStep:
    """Forward to served domains on INTERNAL_SMTP_PORT, others via SES.

    The recipient's own delivery continues.  A temporary failure of a
    forward defers the message; the retry skips forwards already sent,
    which are recorded in the ``forwarded_to`` metadata.
    """

    name = "forward"

    def __init__(self, services: Services) -> None:
        self._smtp = services.smtp
        self._internal = services.internal_smtp
        self._domains = set(services.settings.domains)
        self._metrics = services.metrics

    def process(self, context: MessageContext) -> None:
        for recipient in context.recipients:
            targets = _targets(context, recipient)
            if not targets:
                continue
            try:
                self._forward(context, recipient, targets)
            except WorkerError:
                raise
            except Exception:  # noqa: BLE001 - delivery must go on
                context.log.exception("forwarding from %s failed; the "
                                      "recipient's own delivery continues",
                                      recipient)

    def _forward(self, context: MessageContext, recipient: str,
                 targets: list[str]) -> None:
        reason = _suppression_reason(context, recipient)
        if reason is not None:
            self._metrics.forwards_suppressed.labels(
                domain=context.domain, reason=reason).inc()
            context.log.info("no forward from %s: %s", recipient, reason)
            return
        for target in targets:
            key = f"{recipient}>{target}"
            if key in context.already_forwarded or target == recipient:
                continue
            self._send(context, recipient, target, key)

    def _send(self, context: MessageContext, recipient: str, target: str,
              key: str) -> None:
        if domain_of(target) in self._domains:
            copy = internal_copy(context.body, recipient)
            result = self._internal.send(context.sender, [target], copy)
        else:
            try:
                copy = external_copy(context.body, context.headers,
                                     recipient)
            except ValueError as exc:
                self._metrics.forwards_suppressed.labels(
                    domain=context.domain, reason="not_ascii").inc()
                context.log.warning("no forward from %s to %s: %s",
                                    recipient, target, exc)
                return
            result = self._smtp.send(recipient, [target], copy)
        if result.delivered:
            context.forwarded.append(key)
            self._metrics.forwards_sent.labels(domain=context.domain).inc()
            context.log.info("forwarded from %s to %s", recipient, target)
        elif result.temporary:
            context.deferred[f"forward:{key}"] = result.temporary[target]
            context.log.warning("forward from %s to %s deferred: %s",
                                recipient, target, result.temporary[target])
        else:
            self._metrics.forwards_suppressed.labels(
                domain=context.domain, reason="rejected").inc()
            context.log.warning("forward from %s to %s rejected: %s",
                                recipient, target,
                                result.permanent.get(target))


def _suppression_reason(context: MessageContext,
                        recipient: str) -> str | None:
    headers = context.headers
    if context.is_dsn:
        return "dsn"
    if not context.sender:
        return "null_sender"
    if is_auto_submitted(headers):
        return "auto_submitted"
    if recipient in loop_markers(context.body):
        return "loop"
    if received_hops(headers) > MAX_RECEIVED_HOPS:
        return "hop_limit"
    return None


def _targets(context: MessageContext, recipient: str) -> list[str]:
    rule = context.rules.rules.get(recipient)
    if not rule:
        return []
    value = string_list(rule.get("forwards"))
    if value is None:
        context.log.warning("rule of %s: forwards is not a list of "
                            "addresses; ignored", recipient)
        return []
    targets: list[str] = []
    for entry in value:
        address = normalise(entry)
        if "@" in address and address not in targets:
            targets.append(address)
    return targets
