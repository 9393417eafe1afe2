"""Decide whether to send an out-of-office reply, and build it.

The rules follow RFC 3834 section 2 and the vacation extension of RFC
5230 sections 4.5 and 4.6.  No reply goes to null senders, automatic
mail, lists, bulk mail, system senders, or mail that does not name the
recipient in To or Cc.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from email_worker.mail.addresses import parse_address_list
from email_worker.mail.headers import header_values
from email_worker.mail.rewrite import strip_unsafe

_BULK_PRECEDENCE = ("bulk", "list", "junk")
_SUPPRESS_TOKENS = ("all", "oof", "autoreply")
_SYSTEM_LOCAL_PARTS = re.compile(
    r"^(mailer-daemon|postmaster|listserv|majordomo|mailman|daemon|"
    r"root|abuse|bounces?|no-?reply|do-?not-?reply|"
    r"noreply-.*|no-reply-.*|.*-request|owner-.*|.*-owner|.*-bounces?)$")
DEFAULT_SUBJECT = "Automatic reply"


def suppression_reason(headers: Message, sender: str, recipient: str,
                       verdicts: dict[str, str]) -> str | None:
    """Return why no reply may be sent, or None when one may."""
    checks = (
        ("null_sender", not sender),
        ("self", sender == recipient),
        ("system_sender", _is_system_sender(sender)),
        ("auto_submitted", _is_auto_submitted(headers)),
        ("report", _is_report(headers)),
        ("precedence", _is_bulk(headers)),
        ("list", _has_list_header(headers)),
        ("auto_response_suppress", _suppresses_replies(headers)),
        ("spam", verdicts.get("spam", "").upper() == "FAIL"),
        ("virus", verdicts.get("virus", "").upper() == "FAIL"),
        ("not_addressed", not _addressed_to(headers, recipient)),
    )
    for reason, applies in checks:
        if applies:
            return reason
    return None


def is_auto_submitted(headers: Message) -> bool:
    return _is_auto_submitted(headers)


def _is_auto_submitted(headers: Message) -> bool:
    for value in header_values(headers, "Auto-Submitted"):
        token = value.split(";", 1)[0].strip().lower()
        if token and token != "no":
            return True
    return False


def _is_system_sender(sender: str) -> bool:
    # "Return-Path: <MAILER-DAEMON>" names a local part with no domain.
    local = sender.rpartition("@")[0] if "@" in sender else sender
    local = local.lower()
    return bool(local) and bool(_SYSTEM_LOCAL_PARTS.match(local))


def _is_report(headers: Message) -> bool:
    # RFC 6522 reports (delivery status, read receipts, abuse feedback)
    # are machine-generated even when they lack Auto-Submitted.
    return headers.get_content_type() == "multipart/report"


def _is_bulk(headers: Message) -> bool:
    return any(v.strip().lower() in _BULK_PRECEDENCE
               for v in header_values(headers, "Precedence"))


def _has_list_header(headers: Message) -> bool:
    return any(name.lower().startswith("list-") for name in headers.keys())


def _suppresses_replies(headers: Message) -> bool:
    for value in header_values(headers, "X-Auto-Response-Suppress"):
        tokens = [t.strip().lower() for t in re.split(r"[,;\s]+", value)]
        if any(t in _SUPPRESS_TOKENS for t in tokens):
            return True
    return False


def _addressed_to(headers: Message, recipient: str) -> bool:
    named = parse_address_list(header_values(headers, "To")
                               + header_values(headers, "Cc"))
    return recipient in named


def decoded_header(headers: Message, name: str) -> str:
    """Return a header decoded from RFC 2047, on one line."""
    value = headers.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return strip_unsafe(text)


def build_reply(headers: Message, recipient: str, sender: str,
                rule: dict[str, object]) -> bytes:
    """Build the reply as CRLF bytes ready for SMTP.

    Every value taken from the rule or the original message is stripped
    of CR and LF first, so none can add a header field.
    """
    reply = EmailMessage(policy=SMTP)
    reply["From"] = recipient
    reply["To"] = sender
    reply["Subject"] = _reply_subject(headers, rule)
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = make_msgid(domain=recipient.rpartition("@")[2])
    original_id = strip_unsafe(str(headers.get("Message-ID", "")))
    if original_id:
        reply["In-Reply-To"] = original_id
        references = strip_unsafe(" ".join(
            header_values(headers, "References")))
        reply["References"] = f"{references} {original_id}".strip()
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply["Precedence"] = "bulk"
    subtype = "html" if str(rule.get("ooo_content_type", "")).lower() \
        == "text/html" else "plain"
    # Quoted-printable keeps the reply 7-bit, whatever the relay offers.
    message = rule.get("ooo_message")
    reply.set_content(message if isinstance(message, str) else "",
                      subtype=subtype,
                      charset="utf-8", cte="quoted-printable")
    return reply.as_bytes()


def _reply_subject(headers: Message, rule: dict[str, object]) -> str:
    custom = strip_unsafe(str(rule.get("ooo_subject") or ""))
    if custom:
        return custom
    original = decoded_header(headers, "Subject")
    return f"Auto: {original}" if original else DEFAULT_SUBJECT
