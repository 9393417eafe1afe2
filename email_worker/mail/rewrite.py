"""Edit header fields as bytes, leaving every other byte untouched.

A header field is its first line plus any continuation lines (lines that
start with a space or tab, RFC 5322 section 2.2.3).  Edits work on whole
fields in the header block.  The body is copied as it is, so signatures
over the body and over unedited headers stay valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from email_worker.mail.headers import header_block_end

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


@dataclass(frozen=True)
class HeaderField:
    """One field of the header block: its name and its byte span."""

    name: str
    start: int
    end: int

    def value(self, raw: bytes) -> bytes:
        """Return the raw value after the colon, without the line break."""
        line = raw[self.start:self.end]
        return line.split(b":", 1)[1].strip(b" \t").rstrip(b"\r\n")


def line_ending(raw: bytes) -> bytes:
    """Return the line ending of the first header line (CRLF or LF)."""
    first = raw.find(b"\n")
    if first > 0 and raw[first - 1:first] == b"\r":
        return b"\r\n"
    return b"\n"


def header_fields(raw: bytes) -> list[HeaderField]:
    """List the fields of the header block in order."""
    end = header_block_end(raw)
    fields: list[HeaderField] = []
    position = 0
    while position < end:
        next_break = raw.find(b"\n", position, end)
        line_end = end if next_break < 0 else next_break + 1
        line = raw[position:line_end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            last = fields[-1]
            fields[-1] = HeaderField(last.name, last.start, line_end)
        else:
            match = _FIELD_NAME.match(line)
            name = match.group(1).decode("ascii").lower() if match else ""
            fields.append(HeaderField(name, position, line_end))
        position = line_end
    return fields


def replace_fields(raw: bytes, remove: set[str],
                   prepend: list[bytes]) -> bytes:
    """Drop fields named in ``remove`` and insert ``prepend`` lines first.

    ``remove`` contains lower-case field names.  Each entry of
    ``prepend`` is a complete field without its line break.
    """
    return edit_fields(raw, lambda field, _index: field.name in remove,
                       prepend)


def edit_fields(raw: bytes, drop: Callable[[HeaderField, int], bool],
                prepend: list[bytes]) -> bytes:
    """Drop the fields ``drop`` selects and insert ``prepend`` lines first.

    ``drop`` receives each field and how many fields of the same name
    came before it, so that a caller can keep only the first.
    """
    eol = line_ending(raw)
    parts = [line + eol for line in prepend]
    seen: dict[str, int] = {}
    position = 0
    for field in header_fields(raw):
        index = seen.get(field.name, 0)
        seen[field.name] = index + 1
        if drop(field, index):
            parts.append(raw[position:field.start])
            position = field.end
    parts.append(raw[position:])
    return b"".join(parts)


def replace_first_field(raw: bytes, name: str,
                        replacement: list[bytes]) -> bytes:
    """Replace the first field called ``name`` by ``replacement`` lines.

    The new lines take the old field's place, so the order of every other
    field is kept.  Raises KeyError when the field is absent.
    """
    eol = line_ending(raw)
    for field in header_fields(raw):
        if field.name == name.lower():
            new = b"".join(line + eol for line in replacement)
            return raw[:field.start] + new + raw[field.end:]
    raise KeyError(name)


def strip_unsafe(value: str) -> str:
    """Replace CR, LF, other control characters and line separators.

    Values from DynamoDB or from other messages go into new header
    fields; a line break in them would start a field of the sender's
    choosing.  The email package also treats NEL, U+2028 and U+2029 as
    line breaks and rejects header values that contain them.
    """
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]+", " ", value).strip()
