"""Edge cases of byte-for-byte delivery over SMTP.

SMTP ends the data with CRLF "." CRLF, so the data itself must end in
CRLF: smtplib appends CRLF to a message that does not.  The S3 object is
left as it is, so the copy that arrives has exactly those two bytes
more.  Every other message arrives unchanged.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.e2e

SENDER = "dave@sender.example"
HEAD = (b"From: dave@sender.example\r\nTo: {to}\r\nSubject: {subject}\r\n"
        b"Message-ID: <{subject}@e2e.example>\r\nMIME-Version: 1.0\r\n")


def message(to: str, subject: str, rest: bytes) -> bytes:
    return HEAD.replace(b"{to}", to.encode()).replace(
        b"{subject}", subject.encode()) + rest


def large_body() -> bytes:
    data = base64.encodebytes(os.urandom(3 * 1024 * 1024))
    return (b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + data.replace(b"\n", b"\r\n"))


@pytest.fixture(scope="module")
def sent(moto_url: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Stack, dict[str, bytes]]]:
    with open_stack(moto_url, tmp_path_factory.mktemp("bytes")) as stack:
        com = stack.com
        bodies = {
            "unterminated": b"Content-Type: text/plain\r\n\r\n"
                            b"the last line has no line break",
            "dots": b"Content-Type: text/plain\r\n\r\n.\r\n..two\r\n"
                    b".one\r\n. \r\nend\r\n",
            "eightbit": "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n\r\n"
                        "Grüße aus Köln – ☃\r\n".encode(),
            "large": large_body(),
        }
        stored = {}
        for local, rest in bodies.items():
            recipient = f"{local}@{com}"
            stored[local] = message(recipient, local, rest)
            stack.deliver(com, stored[local], SENDER, [recipient])
        stack.start_worker()
        stack.wait_received(len(bodies))
        stack.wait_drained()
        yield stack, stored


def received(stack: Stack, local: str) -> list[bytes]:
    return [m.content for m in stack.sink.received()
            if m.rcpt_tos == (f"{local}@{stack.com}",)]


def test_bytes_unterminated_gets_crlf(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, stored = sent
    assert received(stack, "unterminated") == [
        stored["unterminated"] + b"\r\n"]


def test_bytes_unterminated_object_left_unchanged(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, stored = sent
    s3, bucket = stack.aws.s3, stack.bucket(stack.com)
    objects = [s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
               for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert stored["unterminated"] in objects


def test_bytes_leading_dots_survive(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, stored = sent
    assert received(stack, "dots") == [stored["dots"]]


def test_bytes_eight_bit_body_unchanged(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, stored = sent
    assert received(stack, "eightbit") == [stored["eightbit"]]


def test_bytes_eight_bit_body_announced(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _stored = sent
    options = [m.mail_options for m in stack.sink.received()
               if m.rcpt_tos == (f"eightbit@{stack.com}",)]
    assert ["BODY=8BITMIME" in o for o in options] == [True]


def test_bytes_ascii_not_announced(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _stored = sent
    options = [m.mail_options for m in stack.sink.received()
               if m.rcpt_tos == (f"dots@{stack.com}",)]
    assert ["BODY=8BITMIME" in o for o in options] == [False]


def test_bytes_large_message_unchanged(
        sent: tuple[Stack, dict[str, bytes]]) -> None:
    stack, stored = sent
    assert received(stack, "large") == [stored["large"]]
