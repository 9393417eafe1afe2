"""Forwarded copies: internal ones keep the original bytes, external ones
are rewritten so SES accepts them, and both carry X-Loop."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

from email_worker.mail.forward import (external_copy, internal_copy,
                                       loop_markers, received_hops)
from email_worker.mail.headers import header_block_end, parse_headers
from email_worker.mail.rewrite import header_fields
from tests.unit.support import shared_file

ALICE = "alice@example.com"
SINGLE_INSTANCE = ("date", "subject", "to", "cc", "message-id",
                   "in-reply-to", "references", "mime-version",
                   "content-type", "content-transfer-encoding",
                   "delivered-to", "list-unsubscribe")


def inbound() -> bytes:
    return shared_file("fixtures", "inbound_message.eml").read_bytes()


def external(raw: bytes, forwarder: str = ALICE) -> bytes:
    return external_copy(raw, parse_headers(raw), forwarder)


def field_names(raw: bytes) -> list[str]:
    return [field.name for field in header_fields(raw)]


def body_of(raw: bytes) -> bytes:
    return raw[header_block_end(raw):]


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


DUPLICATES = (b"Delivered-To: alice@example.com\r\n"
              b"Delivered-To: alice@example.com\r\n"
              b"From: Dave <dave@example.net>\r\n"
              b"To: alice@example.com\r\n"
              b"Subject: first\r\n"
              b"Subject: second\r\n"
              b"Message-ID: <one@example.net>\r\n"
              b"Message-Id: <two@example.net>\r\n"
              b"Date: Fri, 14 Mar 2025 10:41:05 +0100\r\n"
              b"Date: Fri, 14 Mar 2025 10:41:06 +0100\r\n"
              b"References: <a@x>\r\n"
              b"References: <b@x>\r\n"
              b"List-Unsubscribe: <mailto:u@example.net>\r\n"
              b"List-Unsubscribe: <mailto:v@example.net>\r\n"
              b"Received: from a by b\r\n"
              b"Received: from c by d\r\n"
              b"\r\n"
              b"Subject: body line\r\n")


# -- internal_copy --------------------------------------------------------


def test_internal_copy_only_adds_loop_line():
    raw = inbound()
    assert internal_copy(raw, ALICE) == b"X-Loop: alice@example.com\r\n" + raw


def test_internal_copy_lf_message():
    raw = b"From: dave@example.net\n\nbody\n"
    assert internal_copy(raw, ALICE) == b"X-Loop: alice@example.com\n" + raw


def test_internal_copy_forwarder_line_break_stripped():
    copy = internal_copy(inbound(), "alice@example.com\r\nBcc: x@example.org")
    assert copy.startswith(b"X-Loop: alice@example.com Bcc: x@example.org\r\n")


# -- external_copy --------------------------------------------------------


@pytest.mark.parametrize("name", ["return-path", "sender", "dkim-signature"])
def test_external_copy_removes_identity_field(name):
    raw = inbound().replace(b"From: Dave",
                            b"Sender: dave@example.net\r\nFrom: Dave")
    assert name not in field_names(external(raw))


def test_external_copy_removes_x_ses_fields():
    names = field_names(external(inbound()))
    assert [name for name in names if name.startswith("x-ses-")] == []


def test_external_copy_removes_outbound_ses_instructions():
    raw = inbound().replace(
        b"From: Dave",
        b"X-SES-CONFIGURATION-SET: theirs\r\n"
        b"X-Ses-Source-Arn: arn:aws:ses:us-east-1:1:identity/x\r\nFrom: Dave")
    copy = external(raw)
    assert b"x-ses-" not in copy[:header_block_end(copy)].lower()


def test_external_copy_every_dkim_signature_removed():
    raw = inbound().replace(
        b"From: Dave",
        b"DKIM-Signature: v=1; d=second.example; b=QQ==\r\nFrom: Dave")
    assert "dkim-signature" not in field_names(external(raw))


def test_external_copy_no_duplicate_single_instance_fields():
    names = field_names(external(DUPLICATES))
    for name in SINGLE_INSTANCE:
        assert names.count(name) <= 1, name


def test_external_copy_keeps_first_of_duplicates():
    copy = parsed(external(DUPLICATES))
    assert copy["Subject"] == "first"
    assert copy["Message-ID"] == "<one@example.net>"


def test_external_copy_keeps_every_received():
    assert field_names(external(DUPLICATES)).count("received") == 2


def test_external_copy_single_from():
    assert field_names(external(inbound())).count("from") == 1


def test_external_copy_from_is_forwarder():
    copy = parsed(external(inbound()))
    assert copy["From"].addresses[0].addr_spec == ALICE


def test_external_copy_from_names_original_sender():
    name = parsed(external(inbound()))["From"].addresses[0].display_name
    assert "Dave Example" in name
    assert "dave@example.net" in name


def test_external_copy_from_without_display_name():
    raw = inbound().replace(b"From: Dave Example <dave@example.net>",
                            b"From: dave@example.net")
    name = parsed(external(raw))["From"].addresses[0].display_name
    assert "dave@example.net" in name


def test_external_copy_from_encoded_name_decoded():
    raw = inbound().replace(
        b"From: Dave Example <dave@example.net>",
        b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.net>")
    copy = external(raw)
    name = parsed(copy)["From"].addresses[0].display_name
    assert "Jörg Müller" in name
    assert "joerg@example.net" in name


def test_external_copy_from_no_encoded_word_in_quotes():
    # Mail readers do not decode an encoded-word inside a quoted string
    # (RFC 2047 section 5), so the name would show as raw =?UTF-8?... text.
    raw = inbound().replace(
        b"From: Dave Example <dave@example.net>",
        b"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.net>")
    from_line = next(line for line in external(raw).split(b"\r\n")
                     if line.startswith(b"From:"))
    assert re.search(rb'"[^"]*=\?[^"]*"', from_line) is None


def test_external_copy_from_line_is_ascii():
    raw = inbound().replace(
        b"From: Dave Example <dave@example.net>",
        b"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.net>")
    from_line = next(line for line in external(raw).split(b"\r\n")
                     if line.startswith(b"From:"))
    assert from_line.isascii()


def test_external_copy_reply_to_added_when_absent():
    copy = parsed(external(inbound()))
    assert copy["Reply-To"].addresses[0].addr_spec == "dave@example.net"


def test_external_copy_reply_to_kept_when_present():
    raw = inbound().replace(b"From: Dave",
                            b"Reply-To: team@example.net\r\nFrom: Dave")
    copy = external(raw)
    assert field_names(copy).count("reply-to") == 1
    assert parsed(copy)["Reply-To"] == "team@example.net"


def test_external_copy_loop_marker():
    copy = parsed(external(inbound()))
    assert copy["X-Loop"] == ALICE


def test_external_copy_body_unchanged():
    raw = inbound()
    assert body_of(external(raw)) == body_of(raw)


def test_external_copy_body_lookalike_headers_unchanged():
    assert body_of(external(DUPLICATES)) == b"Subject: body line\r\n"


def test_external_copy_keeps_other_fields():
    names = field_names(external(inbound()))
    for name in ("to", "cc", "subject", "date", "message-id",
                 "content-type", "received-spf", "authentication-results"):
        assert name in names, name


def test_external_copy_crlf_throughout():
    copy = external(inbound())
    assert copy.count(b"\n") == copy.count(b"\r\n")


def test_external_copy_of_external_copy_is_stable():
    once = external(inbound())
    twice = external(once)
    assert field_names(twice).count("from") == 1
    assert body_of(twice) == body_of(inbound())


# -- loop_markers / received_hops -----------------------------------------


def test_loop_markers_lower_cased():
    raw = (b"X-Loop: Alice@Example.COM\r\n"
           b"X-Loop: bob@example.com \r\n\r\n")
    assert loop_markers(raw) == {"alice@example.com", "bob@example.com"}


def test_loop_markers_none():
    assert loop_markers(inbound()) == set()


def test_loop_markers_read_back_from_copy():
    copy = internal_copy(inbound(), ALICE)
    assert ALICE in loop_markers(copy)


def test_loop_markers_non_ascii_forwarder():
    forwarder = "\u00fc\u00fc@example.com"
    copy = internal_copy(inbound(), forwarder)
    assert forwarder in loop_markers(copy)


def test_external_copy_non_ascii_forwarder_rejected():
    with pytest.raises(ValueError):
        external_copy(inbound(), parse_headers(inbound()),
                      "\u00fc\u00fc@example.com")


def test_received_hops_counts_received_fields():
    assert received_hops(parse_headers(DUPLICATES)) == 2


def test_received_hops_fixture():
    assert received_hops(parse_headers(inbound())) == 1


def test_received_hops_none():
    assert received_hops(parse_headers(b"From: a@example.net\r\n\r\n")) == 0
