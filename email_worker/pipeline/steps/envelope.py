"""Settle the envelope: sender, recipients and progress of earlier tries."""

from __future__ import annotations

from email.message import Message

from email_worker.mail.addresses import (normalise, parse_address_list,
                                         unique_for_domain)
from email_worker.mail.headers import header_values, parse_headers
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services

# Headers that name recipients when the notification has no envelope.
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To")


class EnvelopeStep:
    """Parse the header block and fill in sender and recipients.

    SES notifications carry the envelope; S3 events do not, so then the
    recipients come from the headers and the sender from Return-Path or
    From.  Recipients delivered by an earlier attempt, recorded in the
    object's ``delivered_to`` metadata, are not sent to again.
    """

    name = "envelope"

    def __init__(self, services: Services) -> None:
        del services

    def process(self, context: MessageContext) -> None:
        headers = parse_headers(context.body)
        context.headers = headers
        notification = context.notification
        if notification.sender is not None:
            context.sender = notification.sender
        else:
            context.sender = sender_from_headers(headers)
        if notification.recipients is not None:
            context.recipients = list(notification.recipients)
        else:
            context.recipients = recipients_from_headers(headers,
                                                         context.domain)
        context.already_delivered = _earlier_deliveries(context)
        context.already_forwarded = _recorded(context, "forwarded_to")
        if context.already_delivered:
            context.log.info("already delivered to %s on an earlier attempt",
                             ",".join(context.already_delivered))


def sender_from_headers(headers: Message) -> str:
    """Return the Return-Path address, else the first From address."""
    return_path = header_values(headers, "Return-Path")
    if return_path:
        return normalise(return_path[0])
    senders = parse_address_list(header_values(headers, "From"))
    return senders[0] if senders else ""


def recipients_from_headers(headers: Message, domain: str) -> list[str]:
    values: list[str] = []
    for name in RECIPIENT_HEADERS:
        values += header_values(headers, name)
    return unique_for_domain(parse_address_list(values), domain)


def _earlier_deliveries(context: MessageContext) -> list[str]:
    done = set(_recorded(context, "delivered_to"))
    return [r for r in context.recipients if r in done]


def _recorded(context: MessageContext, key: str) -> list[str]:
    """Return the comma list stored under ``key`` in the object metadata."""
    if context.stored is None:
        return []
    recorded = context.stored.metadata.get(key, "")
    return [normalise(a) for a in recorded.split(",") if a.strip()]
