"""Read rule attributes leniently: a bad type is ignored, not fatal.

Rules are written by people and tools outside the worker.  An attribute
of the wrong type must not stop delivery to anyone, so these readers
return an empty or false value for it and the caller logs the problem.
"""

from __future__ import annotations

from typing import Any

_TRUE_STRINGS = ("true", "1", "yes", "on")


def flag(rule: dict[str, Any], name: str) -> bool:
    """Return a BOOL attribute; the strings "true", "1", "yes" count too."""
    value = rule.get(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return False


def string_list(value: Any) -> list[str] | None:
    """Return an L, SS or single S attribute as strings, None if invalid."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, set, tuple)):
        return [item for item in value if isinstance(item, str)]
    return None
