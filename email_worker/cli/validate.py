"""Validation of command-line values: addresses, domains, patterns, text."""

from __future__ import annotations

import argparse
import re
import unicodedata

_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Characters rejected in the local part of an address.  Quoted local
# parts are not supported.
_LOCAL_FORBIDDEN = re.compile(r'[\s<>(),;:"\\\[\]@]')
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
MAX_DAYS = 365


class InvalidValue(argparse.ArgumentTypeError):
    """Error for an invalid command-line value."""


def domain(raw: str) -> str:
    """Return a lower-case domain name with at least one dot."""
    value = raw.strip().lower().rstrip(".")
    if "." not in value or not _DOMAIN_RE.match(value) \
            or value.rpartition(".")[2].isdigit():
        raise InvalidValue(f"{raw!r} is not a domain name such as "
                           "example.com")
    return value


def address(raw: str) -> str:
    """Return a lower-case bare address: one @ and a dotted domain."""
    value = raw.strip().lower()
    if value.count("@") != 1:
        raise InvalidValue(f"{raw!r} is not an email address "
                           "(it needs exactly one @)")
    local, _, host = value.partition("@")
    if not local or _LOCAL_FORBIDDEN.search(local) \
            or _CONTROL.search(local) or _has_invisible(local) \
            or len(local) > 64:
        raise InvalidValue(f"{raw!r} is not an email address "
                           "(bad local part)")
    try:
        domain(host)
    except InvalidValue:
        raise InvalidValue(f"{raw!r} is not an email address (the part "
                           "after @ is not a domain name)") from None
    return f"{local}@{host.rstrip('.')}"


def _has_invisible(value: str) -> bool:
    """Check for format characters such as a zero-width space (Cf).

    Such a key looks like the intended address but never matches it.
    """
    return any(unicodedata.category(char) == "Cf" for char in value)


def address_or_domain(raw: str) -> str:
    """Return an address, or a domain when ``raw`` has no @."""
    return address(raw) if "@" in raw else domain(raw)


def pattern(raw: str) -> str:
    """Return a lower-case shell glob for sender addresses."""
    value = raw.strip().lower()
    if not value:
        raise InvalidValue("a pattern must not be empty")
    if re.search(r"\s", value) or _CONTROL.search(value):
        raise InvalidValue(f"{raw!r}: a pattern must not contain "
                           "spaces or control characters")
    if not _brackets_balanced(value):
        raise InvalidValue(f"{raw!r}: every [ in a pattern needs a "
                           "closing ] and every ] an opening [")
    return value


def _brackets_balanced(value: str) -> bool:
    i = 0
    while i < len(value):
        char = value[i]
        if char == "]":
            return False
        if char == "[":
            # As in fnmatch: "!" negates, and a "]" right after the
            # opening bracket (or "[!") is a literal member of the set.
            j = i + 1
            if j < len(value) and value[j] == "!":
                j += 1
            if j < len(value) and value[j] == "]":
                j += 1
            close = value.find("]", j)
            if close < 0:
                return False
            i = close
        i += 1
    return True


def days(raw: str) -> int:
    """Return the reply period in days, 1 to 365."""
    value = raw.strip()
    # isdigit() accepts other scripts' digits; only 0-9 is meant here.
    if not re.fullmatch(r"[0-9]+", value) or not 1 <= int(value) <= MAX_DAYS:
        raise InvalidValue(f"{raw!r}: must be a whole number of days "
                           f"from 1 to {MAX_DAYS}")
    return int(value)


def text_line(field: str):  # type: ignore[no-untyped-def]
    """Return a checker for one line of text, named ``field`` in errors."""
    def check(raw: str) -> str:
        if "\r" in raw or "\n" in raw:
            raise InvalidValue(f"the {field} must not contain line breaks "
                               "(CR or LF)")
        if _CONTROL.search(raw):
            raise InvalidValue(f"the {field} must not contain control "
                               "characters")
        if not raw.strip():
            raise InvalidValue(f"the {field} must not be empty")
        return raw
    check.__name__ = field
    return check
