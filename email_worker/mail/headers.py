"""Read the header block of a raw message without parsing the body.

A message of 40 MB would cost several times its size if parsed whole by
the email package, and only the headers are needed to decide where mail
goes, so everything here stops at the first empty line.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32


def header_block_end(raw: bytes) -> int:
    """Return the offset where the body starts (after the empty line).

    Accepts CRLF and bare LF line endings; a message without an empty
    line is all headers.
    """
    candidates = []
    # b"\n\r\n" ends LF-terminated header lines followed by a CRLF
    # empty line, a mix that the email parser also accepts.
    for separator in (b"\r\n\r\n", b"\n\n", b"\n\r\n"):
        index = raw.find(separator)
        if index >= 0:
            candidates.append(index + len(separator))
    if raw.startswith((b"\r\n", b"\n")):
        return raw.index(b"\n") + 1
    return min(candidates) if candidates else len(raw)


def parse_headers(raw: bytes) -> Message:
    """Parse only the header block of ``raw`` into a Message.

    The compat32 policy keeps undecodable bytes as surrogates instead of
    raising, so broken headers become defects, not failures.
    """
    block = raw[:header_block_end(raw)]
    return BytesHeaderParser(policy=compat32).parsebytes(block)


def header_values(headers: Message, name: str) -> list[str]:
    return [str(value) for value in headers.get_all(name, [])]
