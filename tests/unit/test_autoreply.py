"""Out-of-office replies, when they are suppressed (RFC 3834, RFC 5230),
and what a reply contains."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from email_worker.mail.autoreply import (DEFAULT_SUBJECT, build_reply,
                                         suppression_reason)
from email_worker.mail.headers import header_block_end, parse_headers
from email_worker.pipeline.steps.envelope import sender_from_headers
from tests.conftest import shared_dir
from tests.unit.support import shared_file

ALICE = "alice@example.com"
DAVE = "dave@example.net"
PLAIN = (f"From: Dave Example <{DAVE}>\r\n"
         f"To: Alice Example <{ALICE}>\r\n"
         "Subject: Q1 numbers\r\n"
         "Message-ID: <q1.1@mail.example.net>\r\n"
         "\r\n"
         "numbers\r\n")
RULE = {"ooo_active": True, "ooo_message": "Away until Monday."}


def headers_with(*extra: str, base: str = PLAIN) -> object:
    """Parse ``base`` with ``extra`` header lines added in front."""
    text = "".join(f"{line}\r\n" for line in extra) + base
    return parse_headers(text.encode())


def reason(*extra: str, sender: str = DAVE, recipient: str = ALICE,
           verdicts: dict[str, str] | None = None) -> str | None:
    return suppression_reason(headers_with(*extra), sender, recipient,
                              verdicts or {})


def bounce_corpus(content_type: str | None = None) -> list[object]:
    """Return one param per corpus bounce, optionally of one type."""
    folder = shared_dir() / "corpus" / "bounces"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    if content_type is not None:
        files = [path for path in files if parse_headers(
            path.read_bytes()).get_content_type() == content_type]
    if not files:
        missing = pytest.mark.skip(
            reason=f"no matching bounce corpus under {folder}")
        return [pytest.param(None, marks=missing)]
    return [pytest.param(path, id=path.name) for path in files]


def first_to(headers) -> str:
    addresses = email.utils.getaddresses(headers.get_all("To", []))
    return addresses[0][1].lower() if addresses else ALICE


def reply_to_plain(rule=None, base: str = PLAIN, *extra: str) -> bytes:
    return build_reply(headers_with(*extra, base=base), ALICE, DAVE,
                       rule if rule is not None else RULE)


def parsed(reply: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(reply, policy=policy.default)


def header_lines(reply: bytes) -> list[bytes]:
    block = reply[:header_block_end(reply)]
    return block.split(b"\r\n")[:-2]


# -- suppression_reason ---------------------------------------------------


def test_suppression_plain_message_allows_reply():
    assert reason() is None


def test_suppression_null_sender():
    assert reason(sender="") == "null_sender"


def test_suppression_reply_to_self():
    assert reason(sender=ALICE) == "self"


@pytest.mark.parametrize("sender", [
    "mailer-daemon@example.net",
    "mailer-daemon",
    "postmaster@example.net",
    "listserv@lists.example.net",
    "majordomo@lists.example.net",
    "announce-request@lists.example.net",
    "owner-announce@lists.example.net",
    "noreply@example.net",
    "no-reply@example.net",
    "do-not-reply@example.net",
    "donotreply@example.net",
    "bounces@example.net",
])
def test_suppression_system_sender(sender):
    assert reason(sender=sender) == "system_sender"


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated",
                                   "auto-notified", "Auto-Generated",
                                   "auto-replied; owner-email=x@y.example"])
def test_suppression_auto_submitted(value):
    assert reason(f"Auto-Submitted: {value}") == "auto_submitted"


@pytest.mark.parametrize("value", ["no", "No", "no; comment"])
def test_suppression_auto_submitted_no_allows_reply(value):
    assert reason(f"Auto-Submitted: {value}") is None


@pytest.mark.parametrize("value", ["bulk", "list", "junk", " Bulk "])
def test_suppression_precedence(value):
    assert reason(f"Precedence: {value}") == "precedence"


def test_suppression_precedence_first_class_allows_reply():
    assert reason("Precedence: first-class") is None


@pytest.mark.parametrize("field", [
    "List-Id: <announce.example.net>",
    "List-Help: <mailto:help@example.net>",
    "List-Subscribe: <mailto:sub@example.net>",
    "List-Unsubscribe: <mailto:unsub@example.net>",
    "List-Post: <mailto:post@example.net>",
    "List-Owner: <mailto:owner@example.net>",
    "List-Archive: <https://example.net/archive>",
    "list-id: <lower.example.net>",
])
def test_suppression_list_header(field):
    assert reason(field) == "list"


@pytest.mark.parametrize("value", ["All", "OOF", "AutoReply", "DR, OOF",
                                   "RN, NRN, autoreply", "oof;dr"])
def test_suppression_auto_response_suppress(value):
    assert reason(f"X-Auto-Response-Suppress: {value}") == \
        "auto_response_suppress"


@pytest.mark.parametrize("value", ["DR", "RN, NRN", "None"])
def test_suppression_auto_response_suppress_other_tokens(value):
    assert reason(f"X-Auto-Response-Suppress: {value}") is None


def test_suppression_spam_fail():
    assert reason(verdicts={"spam": "FAIL"}) == "spam"


def test_suppression_spam_fail_lower_case():
    assert reason(verdicts={"spam": "fail"}) == "spam"


def test_suppression_virus_fail():
    assert reason(verdicts={"virus": "FAIL"}) == "virus"


@pytest.mark.parametrize("verdict", ["PASS", "GRAY", "PROCESSING_FAILED"])
def test_suppression_other_verdicts_allow_reply(verdict):
    assert reason(verdicts={"spam": verdict, "virus": verdict}) is None


def test_suppression_not_addressed():
    assert reason(recipient="bob@example.com") == "not_addressed"


def test_suppression_addressed_in_cc():
    headers = headers_with("Cc: Bob <bob@example.com>")
    assert suppression_reason(headers, DAVE, "bob@example.com", {}) is None


def test_suppression_addressed_mixed_case():
    base = PLAIN.replace(f"<{ALICE}>", "<Alice@Example.COM>")
    headers = parse_headers(base.encode())
    assert suppression_reason(headers, DAVE, ALICE, {}) is None


def test_suppression_not_addressed_without_to():
    base = PLAIN.replace(f"To: Alice Example <{ALICE}>\r\n", "")
    headers = parse_headers(base.encode())
    assert suppression_reason(headers, DAVE, ALICE, {}) == "not_addressed"


def test_suppression_delivery_report():
    assert reason("Content-Type: multipart/report; "
                  "report-type=delivery-status; boundary=x") == "report"


def test_suppression_fixture_auto_reply():
    raw = shared_file("fixtures", "auto_reply_do_not_answer.eml")
    headers = parse_headers(raw.read_bytes())
    sender = sender_from_headers(headers)
    assert sender == "carol@example.net"
    assert suppression_reason(headers, sender, ALICE, {}) is not None


def test_suppression_fixture_headers_alone():
    raw = shared_file("fixtures", "auto_reply_do_not_answer.eml")
    headers = parse_headers(raw.read_bytes())
    assert suppression_reason(headers, "carol@example.net", ALICE,
                              {}) == "auto_submitted"


def test_suppression_fixture_inbound_allows_reply():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    headers = parse_headers(raw)
    assert suppression_reason(headers, DAVE, ALICE,
                              {"spam": "PASS", "virus": "PASS"}) is None


@pytest.mark.parametrize("path", bounce_corpus())
def test_suppression_corpus_bounce_with_null_sender(path: Path):
    # Non-delivery reports use a null reverse-path (RFC 5321 section
    # 4.5.5), which SES reports as an empty mail.source.
    headers = parse_headers(path.read_bytes())
    assert suppression_reason(headers, "", first_to(headers), {}) \
        is not None


@pytest.mark.parametrize("path", bounce_corpus("multipart/report"))
def test_suppression_corpus_report_with_header_sender(path: Path):
    # Without an SES envelope the sender comes from Return-Path or From.
    headers = parse_headers(path.read_bytes())
    sender = sender_from_headers(headers)
    assert suppression_reason(headers, sender, first_to(headers), {}) \
        is not None


# -- build_reply ----------------------------------------------------------


def test_reply_to_is_envelope_sender():
    base = PLAIN.replace("Subject:", "Reply-To: other@example.org\r\n"
                         "Subject:")
    reply = parsed(reply_to_plain(None, base))
    assert reply["To"] == DAVE


def test_reply_from_is_recipient():
    assert parsed(reply_to_plain())["From"] == ALICE


def test_reply_subject_prefixed():
    assert parsed(reply_to_plain())["Subject"] == "Auto: Q1 numbers"


def test_reply_subject_decoded_from_rfc2047():
    base = PLAIN.replace("Subject: Q1 numbers",
                         "Subject: =?UTF-8?Q?R=C3=BCckfrage_zum_Angebot?=")
    reply = parsed(reply_to_plain(None, base))
    assert reply["Subject"] == "Auto: Rückfrage zum Angebot"


def test_reply_subject_default_when_missing():
    base = PLAIN.replace("Subject: Q1 numbers\r\n", "")
    reply = parsed(reply_to_plain(None, base))
    assert reply["Subject"] == DEFAULT_SUBJECT


def test_reply_subject_from_rule():
    rule = {**RULE, "ooo_subject": "Out of office"}
    assert parsed(reply_to_plain(rule))["Subject"] == "Out of office"


def test_reply_subject_from_rule_non_ascii_encoded():
    rule = {**RULE, "ooo_subject": "Abwesenheit für Jörg"}
    reply = reply_to_plain(rule)
    subject_line = next(line for line in header_lines(reply)
                        if line.startswith(b"Subject:"))
    assert subject_line.isascii()
    assert b"=?utf-8?" in subject_line.lower()
    assert parsed(reply)["Subject"] == "Abwesenheit für Jörg"


def test_reply_subject_crlf_adds_no_header_line():
    rule = {**RULE, "ooo_subject": "Away\r\nBcc: victim@example.org\r\n"
                                   "\r\ninjected body"}
    reply = reply_to_plain(rule)
    names = [line.split(b":", 1)[0].lower()
             for line in header_lines(reply)
             if not line.startswith((b" ", b"\t"))]
    assert b"bcc" not in names
    assert len(names) == len(set(names))


def test_reply_subject_crlf_kept_on_subject():
    rule = {**RULE, "ooo_subject": "Away\r\nBcc: victim@example.org"}
    reply = parsed(reply_to_plain(rule))
    assert reply["Bcc"] is None
    assert reply["Subject"] == "Away Bcc: victim@example.org"


def test_reply_original_subject_line_break():
    base = PLAIN.replace("Subject: Q1 numbers",
                         "Subject: =?UTF-8?Q?a=0D=0ABcc:_x@example.org?=")
    reply = reply_to_plain(None, base)
    assert parsed(reply)["Bcc"] is None


def test_reply_in_reply_to_original_id():
    reply = parsed(reply_to_plain())
    assert reply["In-Reply-To"] == "<q1.1@mail.example.net>"


def test_reply_references_appends_original_id():
    reply = parsed(reply_to_plain(None, PLAIN, "References: <a@x> <b@x>"))
    assert reply["References"] == "<a@x> <b@x> <q1.1@mail.example.net>"


def test_reply_references_without_parent_references():
    reply = parsed(reply_to_plain())
    assert reply["References"] == "<q1.1@mail.example.net>"


def test_reply_without_original_id():
    base = PLAIN.replace("Message-ID: <q1.1@mail.example.net>\r\n", "")
    reply = parsed(reply_to_plain(None, base))
    assert reply["In-Reply-To"] is None
    assert reply["References"] is None


def test_reply_auto_submitted():
    assert parsed(reply_to_plain())["Auto-Submitted"] == "auto-replied"


def test_reply_is_itself_suppressed():
    reply = reply_to_plain()
    headers = parse_headers(reply)
    assert suppression_reason(headers, ALICE, DAVE, {}) is not None


def test_reply_crlf_line_endings():
    rule = {**RULE, "ooo_message": "line one\nline two\r\nline three\n"}
    reply = reply_to_plain(rule)
    assert reply.count(b"\n") == reply.count(b"\r\n")
    assert reply.count(b"\r") == reply.count(b"\r\n")


def test_reply_body_is_rule_message():
    rule = {**RULE, "ooo_message": "Weg bis Montag – danke"}
    body = parsed(reply_to_plain(rule)).get_content()
    assert body.strip() == "Weg bis Montag – danke"


def test_reply_is_seven_bit():
    rule = {**RULE, "ooo_message": "Weg bis Montag – danke",
            "ooo_subject": "Abwesenheit für Jörg"}
    assert reply_to_plain(rule).isascii()


def test_reply_plain_text_by_default():
    assert parsed(reply_to_plain()).get_content_type() == "text/plain"


def test_reply_html_content_type():
    rule = {**RULE, "ooo_message": "<p>Away</p>",
            "ooo_content_type": "text/html"}
    assert parsed(reply_to_plain(rule)).get_content_type() == "text/html"


def test_reply_message_id_in_recipient_domain():
    message_id = parsed(reply_to_plain())["Message-ID"]
    assert message_id.endswith("@example.com>")


def test_reply_has_date():
    assert parsed(reply_to_plain())["Date"] is not None


def test_reply_to_fixture_subject():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    reply = parsed(build_reply(parse_headers(raw), ALICE, DAVE, RULE))
    assert reply["Subject"] == "Auto: Q1 numbers"
    assert reply["In-Reply-To"] == "<20250314094105.5f2a@mail.example.net>"
