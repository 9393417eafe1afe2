"""Build S3 user metadata that S3 and botocore accept.

botocore rejects non-ASCII metadata values before sending, and S3 limits
user metadata to 2 KB counted over every key and value, so values are
made ASCII and long recipient lists are cut with a count of the rest.
"""

from __future__ import annotations

from urllib.parse import quote

METADATA_LIMIT_BYTES = 2048


def ascii_value(value: str) -> str:
    """Percent-encode characters outside printable ASCII."""
    return "".join(c if " " <= c <= "~" else quote(c, safe="")
                   for c in value)


def truncated_list(items: list[str], budget: int) -> str:
    """Join ``items`` with commas within ``budget`` bytes.

    When they do not fit, as many as fit are kept, followed by
    ``+N more``.
    """
    encoded = [ascii_value(item) for item in items]
    full = ",".join(encoded)
    if len(full) <= budget:
        return full
    kept: list[str] = []
    for index, item in enumerate(encoded):
        suffix = f"+{len(encoded) - index - 1} more"
        candidate = ",".join(kept + [item, suffix])
        if len(candidate) > budget:
            break
        kept.append(item)
    return ",".join(kept + [f"+{len(encoded) - len(kept)} more"])


def metadata_size(metadata: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode())
               for k, v in metadata.items())


def merge_metadata(existing: dict[str, str], fields: dict[str, str],
                   lists: dict[str, list[str]]) -> dict[str, str]:
    """Return ``existing`` updated with ``fields`` and ``lists``.

    Existing keys are kept (SES client-side encryption stores its key
    material there) unless a new field replaces them.  List values share
    what is left of the 2 KB budget, the first list taking its share
    first.
    """
    # botocore rejects non-ASCII values, so an existing one that S3
    # returned undecoded is made ASCII too, or the copy would always fail.
    merged = {k: ascii_value(v) for k, v in existing.items()
              if k not in fields and k not in lists}
    merged.update({k: ascii_value(v) for k, v in fields.items()})
    names = [name for name, items in lists.items() if items]
    for position, name in enumerate(names):
        remaining = (METADATA_LIMIT_BYTES - metadata_size(merged)
                     - sum(len(n) for n in names[position:]))
        share = max(0, remaining // (len(names) - position))
        merged[name] = truncated_list(lists[name], share)
    # With existing metadata near the limit even "+N more" may not fit;
    # then the lists are left out rather than failing the copy.
    for name in reversed(names):
        if metadata_size(merged) <= METADATA_LIMIT_BYTES:
            break
        del merged[name]
    return merged
