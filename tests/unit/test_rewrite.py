"""Header edits work on bytes and leave the body byte-identical."""

from __future__ import annotations

import pytest

from email_worker.mail.headers import header_block_end
from email_worker.mail.rewrite import (edit_fields, header_fields,
                                       line_ending, replace_fields,
                                       replace_first_field, strip_unsafe)
from tests.unit.support import shared_file

MESSAGE = (b"Received: from a\r\n"
           b" by b;\r\n"
           b"\tFri, 14 Mar 2025\r\n"
           b"From: Dave <dave@example.net>\r\n"
           b"To: alice@example.com\r\n"
           b"Received: from c by d\r\n"
           b"Subject: hi\r\n"
           b"\r\n"
           b"Subject: not a header\r\n"
           b"\r\n"
           b"From: also body\r\n")
BODY = b"Subject: not a header\r\n\r\nFrom: also body\r\n"


def body_of(raw: bytes) -> bytes:
    return raw[header_block_end(raw):]


# -- line_ending ----------------------------------------------------------


def test_line_ending_crlf():
    assert line_ending(b"A: b\r\n\r\nbody\n") == b"\r\n"


def test_line_ending_lf():
    assert line_ending(b"A: b\n\r\nbody\r\n") == b"\n"


def test_line_ending_no_break_defaults_to_lf():
    assert line_ending(b"A: b") == b"\n"


# -- header_fields --------------------------------------------------------


def test_header_fields_names_lower_case_in_order():
    names = [field.name for field in header_fields(MESSAGE)]
    assert names == ["received", "from", "to", "received", "subject"]


def test_header_fields_continuation_lines_joined():
    first = header_fields(MESSAGE)[0]
    assert MESSAGE[first.start:first.end] == (
        b"Received: from a\r\n by b;\r\n\tFri, 14 Mar 2025\r\n")


def test_header_fields_spans_cover_header_block():
    fields = header_fields(MESSAGE)
    assert fields[0].start == 0
    assert fields[-1].end == MESSAGE.index(b"\r\n\r\n") + 2


def test_header_fields_value_without_line_break():
    field = header_fields(MESSAGE)[1]
    assert field.value(MESSAGE) == b"Dave <dave@example.net>"


def test_header_fields_stop_at_empty_line():
    names = [field.name for field in header_fields(MESSAGE)]
    assert names.count("subject") == 1


def test_header_fields_lf_message():
    raw = b"From: a@example.net\nSubject: x\n  folded\n\nbody\n"
    fields = header_fields(raw)
    assert [field.name for field in fields] == ["from", "subject"]
    assert raw[fields[1].start:fields[1].end] == b"Subject: x\n  folded\n"


def test_header_fields_space_before_colon():
    fields = header_fields(b"Subject : spaced\r\n\r\n")
    assert fields[0].name == "subject"


def test_header_fields_no_colon_empty_name():
    fields = header_fields(b"From mbox line\r\nTo: a@example.com\r\n\r\n")
    assert [field.name for field in fields] == ["", "to"]


def test_header_fields_message_without_body():
    raw = b"From: a@example.net\r\nTo: b@example.com\r\n"
    assert [field.name for field in header_fields(raw)] == ["from", "to"]


# -- replace_fields / edit_fields -----------------------------------------


def test_replace_fields_removes_every_instance():
    result = replace_fields(MESSAGE, {"received"}, [])
    assert b"Received:" not in result[:header_block_end(result)]


def test_replace_fields_removes_continuation_lines():
    result = replace_fields(MESSAGE, {"received"}, [])
    assert result.startswith(b"From: Dave <dave@example.net>\r\n")


def test_replace_fields_keeps_body():
    result = replace_fields(MESSAGE, {"received", "subject"}, [b"X-A: 1"])
    assert body_of(result) == BODY


def test_replace_fields_prepends_with_message_line_ending():
    result = replace_fields(MESSAGE, set(), [b"X-A: 1", b"X-B: 2"])
    assert result == b"X-A: 1\r\nX-B: 2\r\n" + MESSAGE


def test_replace_fields_lf_message_prepends_lf():
    raw = b"From: a@example.net\n\nbody\r\n"
    result = replace_fields(raw, set(), [b"X-A: 1"])
    assert result == b"X-A: 1\nFrom: a@example.net\n\nbody\r\n"


def test_replace_fields_nothing_to_do_is_identity():
    assert replace_fields(MESSAGE, set(), []) == MESSAGE


def test_replace_fields_body_lookalikes_kept():
    result = replace_fields(MESSAGE, {"from", "subject"}, [])
    assert body_of(result) == BODY


def test_edit_fields_index_counts_same_name():
    seen = []

    def keep(field, index):
        seen.append((field.name, index))
        return False

    edit_fields(MESSAGE, keep, [])
    assert seen == [("received", 0), ("from", 0), ("to", 0),
                    ("received", 1), ("subject", 0)]


def test_edit_fields_keeps_first_instance_only():
    result = edit_fields(
        MESSAGE, lambda field, index: field.name == "received" and index > 0,
        [])
    header = result[:header_block_end(result)]
    assert header.count(b"Received:") == 1
    assert b"from c by d" not in header


def test_edit_fields_fixture_body_identical():
    raw = shared_file("fixtures", "inbound_message.eml").read_bytes()
    result = edit_fields(raw, lambda field, _index: field.name.startswith(
        "x-ses-"), [b"X-Loop: alice@example.com"])
    assert body_of(result) == body_of(raw)
    assert b"X-SES-" not in result[:header_block_end(result)]


# -- replace_first_field --------------------------------------------------


def test_replace_first_field_keeps_position():
    result = replace_first_field(MESSAGE, "From", [b"From: new@example.com",
                                                   b"X-Old: 1"])
    names = [field.name for field in header_fields(result)]
    assert names == ["received", "from", "x-old", "to", "received",
                     "subject"]


def test_replace_first_field_only_first_instance():
    result = replace_first_field(MESSAGE, "received", [b"Received: new"])
    assert result.startswith(b"Received: new\r\nFrom: Dave")
    assert b"Received: from c by d\r\n" in result


def test_replace_first_field_everything_else_identical():
    result = replace_first_field(MESSAGE, "to", [b"To: x@example.com"])
    assert result == MESSAGE.replace(b"To: alice@example.com",
                                     b"To: x@example.com")


def test_replace_first_field_missing_raises_key_error():
    with pytest.raises(KeyError):
        replace_first_field(MESSAGE, "Reply-To", [b"Reply-To: a@b.example"])


def test_replace_first_field_ignores_body():
    raw = b"To: a@example.com\r\n\r\nFrom: body\r\n"
    with pytest.raises(KeyError):
        replace_first_field(raw, "from", [b"From: x@example.com"])


# -- strip_unsafe ---------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("Away\r\nBcc: victim@example.org", "Away Bcc: victim@example.org"),
    ("Away\nBcc: x", "Away Bcc: x"),
    ("Away\rBcc: x", "Away Bcc: x"),
    ("tab\there", "tab here"),
    ("nul\x00byte", "nul byte"),
    ("del\x7fchar", "del char"),
    ("  padded\r\n", "padded"),
    ("Rückfrage", "Rückfrage"),
    ("Away\u2028Bcc: x", "Away Bcc: x"),
    ("Away\u2029Bcc: x", "Away Bcc: x"),
    ("Away\x85Bcc: x", "Away Bcc: x"),
])
def test_strip_unsafe_replaces_controls(value, expected):
    assert strip_unsafe(value) == expected


def test_strip_unsafe_result_has_no_line_break():
    result = strip_unsafe("a\r\n\r\nb\x0bc\x0cd")
    assert "\r" not in result
    assert "\n" not in result
