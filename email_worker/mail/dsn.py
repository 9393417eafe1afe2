"""Recognise SES delivery status notifications and read what they report.

SES sends a DSN (RFC 3464) from ``MAILER-DAEMON@amazonses.com`` or
``MAILER-DAEMON@<region>.amazonses.com`` as a ``multipart/report;
report-type=delivery-status``.  The ID that SES gave the original message
is the local part of the Message-ID inside the returned ``message/rfc822``
or ``text/rfc822-headers`` part.  The DSN's own Message-ID has the same
form, so it must not be used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from email_worker.mail.addresses import normalise, parse_address_list
from email_worker.mail.headers import header_values

_SES_DOMAIN = re.compile(r"^(?:[a-z0-9-]+\.)*amazonses\.com$")
_SES_MESSAGE_ID = re.compile(r"^[0-9a-z-]{20,100}$")


@dataclass(frozen=True)
class SesBounce:
    """The original SES message ID and the failed recipients of a DSN.

    ``failed_recipients`` keeps the order of the report and excludes
    ``Action: delayed`` and other non-failure blocks.
    """

    original_message_id: str | None
    failed_recipients: tuple[str, ...]


def is_ses_dsn(headers: Message) -> bool:
    """Check the From address and the content type of the header block."""
    senders = parse_address_list(header_values(headers, "From"))
    if len(senders) != 1:
        return False
    local, _, domain = senders[0].rpartition("@")
    if local != "mailer-daemon" or not _SES_DOMAIN.match(domain):
        return False
    if headers.get_content_type() != "multipart/report":
        return False
    report_type = headers.get_param("report-type", "") or ""
    return str(report_type).lower() == "delivery-status"


def read_ses_bounce(raw: bytes) -> SesBounce:
    """Parse a DSN whole and extract the original ID and failed recipients.

    Only called after is_ses_dsn, so the messages parsed whole are small
    reports, never arbitrary large mail.
    """
    message = BytesParser(policy=compat32).parsebytes(raw)
    original_id: str | None = None
    failed: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("message/delivery-status",
                            "message/global-delivery-status"):
            failed += _failed_recipients(part)
        elif original_id is None and content_type in (
                "message/rfc822", "text/rfc822-headers", "message/global",
                "message/global-headers"):
            original_id = _returned_message_id(part)
    unique = list(dict.fromkeys(failed))
    return SesBounce(original_id, tuple(unique))


def _failed_recipients(part: Message) -> list[str]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    failed = []
    # Block 0 holds the per-message fields; the rest are per recipient.
    for block in blocks[1:]:
        action = str(block.get("Action", "")).strip().lower()
        recipient = str(block.get("Final-Recipient", ""))
        if action != "failed" or not recipient:
            continue
        # "rfc822; addr", or "rfc822;addr" in older SES reports.
        address = normalise(recipient.split(";", 1)[-1])
        if "@" in address:
            failed.append(address)
    return failed


def _returned_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        returned = payload[0]
    elif isinstance(payload, str):
        returned = HeaderParser(policy=compat32).parsestr(payload)
    else:
        return None
    return ses_id_from_message_id(str(returned.get("Message-ID", "")))


def ses_id_from_message_id(value: str) -> str | None:
    """Return the SES ID in ``<ID@email.amazonses.com>``, or None."""
    local, _, domain = value.strip().strip("<>").rpartition("@")
    local = local.strip()
    if not _SES_DOMAIN.match(domain.strip().lower()):
        return None
    if not _SES_MESSAGE_ID.match(local.lower()):
        return None
    return local
