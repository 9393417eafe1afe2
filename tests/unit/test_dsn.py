"""SES bounce reports are recognised and read, and other bounces are
not."""

from __future__ import annotations

from pathlib import Path

import pytest

from email_worker.mail.dsn import (is_ses_dsn, read_ses_bounce,
                                   ses_id_from_message_id)
from email_worker.mail.headers import parse_headers
from tests.conftest import shared_dir
from tests.unit.support import shared_file

US_EAST_ID = "01000199e9cb0eb5-3f16947c-cf25-ec84-d8db-c74254770f58-000000"
EU_WEST_ID = "0102019904dba41e-cccc3fc1-626e-53a1-3043-b026c48bbf33-000000"
US_EAST_OWN_ID = ("0100019feff9243a-8f506b40-928b-5b7a-767c-76fb008f86be"
                  "-000000")


def us_east_dsn() -> bytes:
    return shared_file("fixtures", "ses_dsn_us_east_1.eml").read_bytes()


def eu_west_dsn() -> bytes:
    return shared_file("fixtures",
                       "ses_dsn_eu_west_1_two_recipients.eml").read_bytes()


def bounce_corpus() -> list[object]:
    folder = shared_dir() / "corpus" / "bounces"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    if not files:
        reason = f"bounce corpus not found under {folder}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(path, id=path.name) for path in files]


def with_headers_part(raw: bytes) -> bytes:
    """Turn the returned message part into a text/rfc822-headers part."""
    start = raw.index(b"Content-Type: message/rfc822\r\n")
    body_start = raw.index(b"\r\n\r\n", start) + 4
    headers_end = raw.index(b"\r\n\r\n", body_start) + 4
    closing = raw.index(b"------=_Part_", headers_end)
    return (raw[:start] + b"Content-Type: text/rfc822-headers\r\n"
            + raw[start + len(b"Content-Type: message/rfc822\r\n"):
                  headers_end]
            + raw[closing:])


def headers_of(text: str) -> object:
    return parse_headers(text.encode())


REPORT_TYPE = ("Content-Type: multipart/report; report-type=delivery-status;"
               " boundary=x\r\n")


# -- is_ses_dsn ---------------------------------------------------------


def test_is_ses_dsn_us_east_fixture():
    assert is_ses_dsn(parse_headers(us_east_dsn()))


def test_is_ses_dsn_regional_fixture():
    assert is_ses_dsn(parse_headers(eu_west_dsn()))


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@amazonses.com",
    "mailer-daemon@amazonses.com",
    "MAILER-DAEMON@us-west-2.amazonses.com",
    "MAILER-DAEMON@email-bounces.amazonses.com",
    "Mail Delivery <MAILER-DAEMON@eu-west-1.amazonses.com>",
])
def test_is_ses_dsn_accepts_sender(sender):
    assert is_ses_dsn(headers_of(f"From: {sender}\r\n{REPORT_TYPE}\r\n"))


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@example.com",
    "MAILER-DAEMON@notamazonses.com",
    "MAILER-DAEMON@amazonses.com.example.net",
    "postmaster@amazonses.com",
    "alice@example.com, MAILER-DAEMON@amazonses.com",
])
def test_is_ses_dsn_rejects_sender(sender):
    assert not is_ses_dsn(headers_of(f"From: {sender}\r\n{REPORT_TYPE}\r\n"))


def test_is_ses_dsn_rejects_missing_from():
    assert not is_ses_dsn(headers_of(f"{REPORT_TYPE}\r\n"))


@pytest.mark.parametrize("content_type", [
    "text/plain",
    "multipart/mixed; boundary=x",
    "multipart/report; report-type=disposition-notification; boundary=x",
    "multipart/report; boundary=x",
])
def test_is_ses_dsn_rejects_content_type(content_type):
    text = (f"From: MAILER-DAEMON@amazonses.com\r\n"
            f"Content-Type: {content_type}\r\n\r\n")
    assert not is_ses_dsn(headers_of(text))


def test_is_ses_dsn_report_type_case_insensitive():
    text = ("From: MAILER-DAEMON@amazonses.com\r\n"
            "Content-Type: Multipart/Report; Report-Type=Delivery-Status;"
            " boundary=x\r\n\r\n")
    assert is_ses_dsn(headers_of(text))


def test_is_ses_dsn_inbound_message_rejected():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    assert not is_ses_dsn(parse_headers(raw))


@pytest.mark.parametrize("path", bounce_corpus())
def test_is_ses_dsn_corpus_bounce_rejected(path: Path):
    assert not is_ses_dsn(parse_headers(path.read_bytes()))


# -- read_ses_bounce ----------------------------------------------------


def test_read_bounce_original_id_us_east():
    assert read_ses_bounce(us_east_dsn()).original_message_id == US_EAST_ID


def test_read_bounce_ignores_own_message_id():
    report = read_ses_bounce(us_east_dsn())
    assert report.original_message_id != US_EAST_OWN_ID


def test_read_bounce_failed_recipient_us_east():
    report = read_ses_bounce(us_east_dsn())
    assert report.failed_recipients == ("nobody@example.net",)


def test_read_bounce_original_id_regional():
    assert read_ses_bounce(eu_west_dsn()).original_message_id == EU_WEST_ID


def test_read_bounce_two_recipients_normalised():
    report = read_ses_bounce(eu_west_dsn())
    assert report.failed_recipients == ("old.address@example.net",
                                        "frank@example.net")


def test_read_bounce_delayed_block_not_failed():
    raw = eu_west_dsn().replace(
        b"Action: failed\r\nFinal-Recipient: rfc822; Frank@Example.NET",
        b"Action: delayed\r\nFinal-Recipient: rfc822; Frank@Example.NET")
    assert read_ses_bounce(raw).failed_recipients == (
        "old.address@example.net",)


def test_read_bounce_only_delayed_has_no_failures():
    raw = us_east_dsn().replace(b"Action: failed", b"Action: delayed")
    assert read_ses_bounce(raw).failed_recipients == ()


def test_read_bounce_action_case_insensitive():
    raw = us_east_dsn().replace(b"Action: failed", b"Action: FAILED")
    assert read_ses_bounce(raw).failed_recipients == ("nobody@example.net",)


def test_read_bounce_recipient_without_space():
    raw = us_east_dsn().replace(b"rfc822; nobody@example.net",
                                b"rfc822;nobody@example.net")
    assert read_ses_bounce(raw).failed_recipients == ("nobody@example.net",)


def test_read_bounce_fields_in_older_order():
    raw = us_east_dsn().replace(
        b"Action: failed\r\nFinal-Recipient: rfc822; nobody@example.net\r\n",
        b"Final-Recipient: rfc822;nobody@example.net\r\nAction: failed\r\n")
    assert read_ses_bounce(raw).failed_recipients == ("nobody@example.net",)


def test_read_bounce_duplicate_recipient_listed_once():
    raw = eu_west_dsn().replace(b"Frank@Example.NET\r\nDiagnostic",
                                b"OLD.address@example.net\r\nDiagnostic")
    report = read_ses_bounce(raw)
    assert report.failed_recipients == ("old.address@example.net",)


def test_read_bounce_rfc822_headers_part():
    raw = with_headers_part(us_east_dsn())
    assert b"text/rfc822-headers" in raw
    assert read_ses_bounce(raw).original_message_id == US_EAST_ID


def test_read_bounce_rfc822_headers_part_keeps_recipients():
    raw = with_headers_part(eu_west_dsn())
    report = read_ses_bounce(raw)
    assert report.failed_recipients == ("old.address@example.net",
                                        "frank@example.net")


def test_read_bounce_without_returned_message():
    raw = us_east_dsn()
    start = raw.index(b"------=_Part_182734_990011223.1741946533871\r\n"
                      b"Content-Type: message/rfc822")
    closing = b"------=_Part_182734_990011223.1741946533871--\r\n"
    report = read_ses_bounce(raw[:start] + closing)
    assert report.original_message_id is None
    assert report.failed_recipients == ("nobody@example.net",)


def test_read_bounce_returned_id_not_from_ses():
    raw = us_east_dsn().replace(
        f"<{US_EAST_ID}@email.amazonses.com>".encode(),
        b"<c0ffee42@mail.example.com>")
    assert read_ses_bounce(raw).original_message_id is None


# -- ses_id_from_message_id ---------------------------------------------


def test_ses_id_us_east_domain():
    value = f"<{US_EAST_ID}@email.amazonses.com>"
    assert ses_id_from_message_id(value) == US_EAST_ID


def test_ses_id_regional_domain():
    value = f"<{EU_WEST_ID}@eu-west-1.amazonses.com>"
    assert ses_id_from_message_id(value) == EU_WEST_ID


def test_ses_id_surrounding_space():
    value = f"  <{US_EAST_ID}@email.amazonses.com> "
    assert ses_id_from_message_id(value) == US_EAST_ID


def test_ses_id_without_brackets():
    assert ses_id_from_message_id(
        f"{US_EAST_ID}@email.amazonses.com") == US_EAST_ID


def test_ses_id_domain_case_insensitive():
    value = f"<{US_EAST_ID}@Email.AmazonSES.com>"
    assert ses_id_from_message_id(value) == US_EAST_ID


@pytest.mark.parametrize("value", [
    "",
    "<>",
    f"<{US_EAST_ID}@mail.example.com>",
    f"<{US_EAST_ID}@amazonses.com.example.net>",
    "<short@email.amazonses.com>",
    "<has space in the local part of it@email.amazonses.com>",
    f"<{US_EAST_ID}>",
])
def test_ses_id_rejected(value):
    assert ses_id_from_message_id(value) is None
