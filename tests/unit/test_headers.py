"""Only the header block is parsed, whatever the line endings."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import compat32

import pytest

from email_worker.mail.headers import (header_block_end, header_values,
                                       parse_headers)
from tests.unit.support import corpus_params, shared_file


def test_block_end_crlf():
    raw = b"From: a@example.net\r\nTo: b@example.com\r\n\r\nbody\r\n"
    assert raw[header_block_end(raw):] == b"body\r\n"


def test_block_end_bare_lf():
    raw = b"From: a@example.net\nTo: b@example.com\n\nbody\n"
    assert raw[header_block_end(raw):] == b"body\n"


def test_block_end_crlf_line_then_lf_blank():
    raw = b"From: a@example.net\r\n\nbody\r\n\r\nmore\r\n"
    assert raw[header_block_end(raw):] == b"body\r\n\r\nmore\r\n"


def test_block_end_lf_lines_then_crlf_blank():
    raw = b"From: a@example.net\nTo: b@example.com\n\r\nbody\n\nmore\n"
    assert raw[header_block_end(raw):] == b"body\n\nmore\n"


def test_block_end_ignores_blank_lines_in_body():
    raw = b"Subject: x\r\n\r\nline\n\nline\r\n\r\n"
    assert header_block_end(raw) == len(b"Subject: x\r\n\r\n")


def test_block_end_no_blank_line():
    raw = b"Subject: only headers\r\nX-Test: 1\r\n"
    assert header_block_end(raw) == len(raw)


def test_block_end_empty_message():
    assert header_block_end(b"") == 0


@pytest.mark.parametrize("raw,expected", [
    (b"\r\nbody\r\n", 2), (b"\nbody\n", 1)])
def test_block_end_leading_blank_line(raw, expected):
    assert header_block_end(raw) == expected


def test_parse_headers_stops_at_blank_line():
    raw = b"Subject: real\r\n\r\nSubject: in body\r\n"
    headers = parse_headers(raw)
    assert headers.get_all("Subject") == ["real"]


def test_parse_headers_skips_body():
    raw = b"Subject: real\r\n\r\nbody text\r\n"
    assert parse_headers(raw).get_payload() == ""


def test_parse_headers_folded_value():
    raw = b"Subject: first\r\n second\r\n\r\n"
    assert parse_headers(raw)["Subject"] == "first\r\n second"


def test_parse_headers_undecodable_byte_tolerated():
    raw = b"Subject: caf\xe9\r\nFrom: a@example.net\r\n\r\n"
    headers = parse_headers(raw)
    assert headers["Subject"] is not None
    assert headers["From"] == "a@example.net"


def test_parse_headers_skips_mbox_line():
    raw = (b"From sender@example.net Mon Mar 18 11:39:41 2013\n"
           b"From: sender@example.net\nSubject: x\n\nbody\n")
    headers = parse_headers(raw)
    assert headers.get_all("From") == ["sender@example.net"]


def test_header_values_all_occurrences():
    raw = b"Received: one\r\nReceived: two\r\n\r\n"
    assert header_values(parse_headers(raw), "Received") == ["one", "two"]


def test_header_values_missing_is_empty():
    assert header_values(parse_headers(b"X: 1\r\n\r\n"), "To") == []


def test_inbound_fixture_body_start():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    assert raw[header_block_end(raw):].startswith(b"Hi Alice")


def test_inbound_fixture_ses_headers_first():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    headers = parse_headers(raw)
    assert headers.keys()[0] == "Return-Path"
    assert headers["X-SES-Spam-Verdict"] == "PASS"


def test_inbound_fixture_has_no_bcc():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    assert parse_headers(raw).get("Bcc") is None


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_block_end_within_message(path):
    raw = path.read_bytes()
    end = header_block_end(raw)
    assert 0 < end <= len(raw)


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_block_end_after_blank_line(path):
    raw = path.read_bytes()
    end = header_block_end(raw)
    assert end == len(raw) or raw[:end].endswith((b"\n\n", b"\n\r\n"))


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_headers_match_full_parse(path):
    raw = path.read_bytes()
    full = BytesParser(policy=compat32).parsebytes(raw)
    assert parse_headers(raw).items() == full.items()
