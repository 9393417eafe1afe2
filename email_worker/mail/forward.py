"""Build forwarded copies of a message.

A copy to a served domain keeps the original bytes and gains an X-Loop
header.  A copy to any other domain is relayed through SES.  SES accepts
only verified identities in From, Sender and Return-Path, rejects
duplicate single-instance headers and reads X-SES-* headers as sending
instructions, so those headers are rewritten or removed.  The body bytes
are never changed.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from email.message import Message
from email.utils import formataddr, getaddresses

from email_worker.mail.headers import header_values
from email_worker.mail.rewrite import (HeaderField, edit_fields,
                                      header_fields,
                                      replace_fields, strip_unsafe)

LOOP_HEADER = "X-Loop"
_REMOVED_FOR_SES = {"return-path", "sender", "dkim-signature", "from",
                    "reply-to"}
# Fields that may appear only once in a message (RFC 5322 section 3.6);
# SES rejects a message that repeats one.
_SINGLE_INSTANCE = {"date", "subject", "to", "cc", "bcc", "message-id",
                    "in-reply-to", "references", "mime-version",
                    "content-type", "content-transfer-encoding",
                    "delivered-to", "list-unsubscribe", "list-id"}


def loop_markers(raw: bytes) -> set[str]:
    """Return the addresses named in X-Loop headers, lower-cased.

    The values are read from the raw header bytes as UTF-8, so that the
    marker of a non-ASCII forwarder matches its address.
    """
    return {strip_unsafe(field.value(raw).decode("utf-8", "replace")).lower()
            for field in header_fields(raw)
            if field.name == LOOP_HEADER.lower()}


def received_hops(headers: Message) -> int:
    return len(headers.get_all("Received", []))


def internal_copy(raw: bytes, forwarder: str) -> bytes:
    """Return the original bytes with an X-Loop header in front."""
    return replace_fields(raw, set(), [_loop_line(forwarder)])


def external_copy(raw: bytes, headers: Message, forwarder: str) -> bytes:
    """Return a copy that SES accepts from ``forwarder``.

    From becomes the forwarder, with the original author in the display
    name; Reply-To points to the original author unless the message had
    one.

    Raises ValueError for a non-ASCII forwarder, which SES cannot send
    from because it does not support SMTPUTF8.  A non-ASCII author stays
    in the display name but gets no Reply-To.
    """
    if not forwarder.isascii():
        raise ValueError(f"cannot send through SES from {forwarder!r}: "
                         "the address is not ASCII")
    author_name, author = _author(headers)
    display = f"{author_name} at {author}" if author_name else author
    new_from = formataddr((strip_unsafe(display), forwarder),
                          charset="utf-8")
    reply_to = header_values(headers, "Reply-To")
    reply_to_value = strip_unsafe(reply_to[0]) if reply_to else author
    prepend = [_loop_line(forwarder), b"From: " + new_from.encode("ascii")]
    encoded_reply_to = _ascii(reply_to_value) if reply_to_value else None
    if encoded_reply_to:
        prepend.append(b"Reply-To: " + encoded_reply_to)
    return edit_fields(raw, _removed_for_ses, prepend)


def _removed_for_ses(field: HeaderField, index: int) -> bool:
    if field.name in _REMOVED_FOR_SES or field.name.startswith("x-ses-"):
        return True
    return field.name in _SINGLE_INSTANCE and index > 0


def _author(headers: Message) -> tuple[str, str]:
    pairs = getaddresses(header_values(headers, "From"))
    for name, address in pairs:
        if "@" in address:
            return _decoded(name), strip_unsafe(address).lower()
    return "", ""


def _decoded(name: str) -> str:
    # The name goes into a quoted string, where RFC 2047 section 5 does
    # not allow encoded-words, so decode them; formataddr re-encodes.
    try:
        name = str(make_header(decode_header(name)))
    except (ValueError, LookupError, UnicodeError):
        pass
    return strip_unsafe(name)


def _loop_line(forwarder: str) -> bytes:
    # UTF-8, not ASCII, so that a non-ASCII forwarder's marker matches
    # when the copy comes back.
    return f"{LOOP_HEADER}: {strip_unsafe(forwarder)}".encode("utf-8")


def _ascii(value: str) -> bytes | None:
    """Encode an address list for a header, or None if it cannot be.

    Names are RFC 2047 encoded; an address that is not ASCII cannot be
    written without SMTPUTF8, which SES does not support.
    """
    if value.isascii():
        return value.encode("ascii")
    try:
        return ", ".join(formataddr(pair, charset="utf-8")
                         for pair in getaddresses([value])).encode("ascii")
    except UnicodeError:
        return None
