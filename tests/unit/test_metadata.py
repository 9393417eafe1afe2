"""Audit metadata is ASCII and fits S3's 2 KB user-metadata limit."""

from __future__ import annotations

import pytest

from email_worker.mail.metadata import (METADATA_LIMIT_BYTES, ascii_value,
                                        merge_metadata, metadata_size,
                                        truncated_list)

# Client-side encryption keys as SES stores them. They must survive.
KMS_METADATA = {
    "x-amz-key-v2": "A" * 248,
    "x-amz-iv": "B" * 16,
    "x-amz-cek-alg": "AES/GCM/NoPadding",
    "x-amz-wrap-alg": "kms",
    "x-amz-matdesc": '{"aws:ses:message-id":"0vfh5uual2mmckaeivd120n0e",'
                     '"aws:ses:rule-name":"inbound"}',
    "x-amz-tag-len": "128",
}


def addresses(count: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i:04d}@example.com" for i in range(count)]


def test_ascii_value_printable_unchanged():
    assert ascii_value("alice@example.com, ok ~") == \
        "alice@example.com, ok ~"


def test_ascii_value_non_ascii_percent_encoded():
    assert ascii_value("Rückfrage") == "R%C3%BCckfrage"


def test_ascii_value_control_characters_encoded():
    assert ascii_value("a\r\nb\tc") == "a%0D%0Ab%09c"


def test_ascii_value_result_is_ascii():
    assert ascii_value("名前 ✉ ü").isascii()


def test_truncated_list_fits_unchanged():
    assert truncated_list(["a@x.com", "b@x.com"], 100) == "a@x.com,b@x.com"


def test_truncated_list_empty():
    assert truncated_list([], 10) == ""


def test_truncated_list_counts_dropped_items():
    items = addresses(50)
    result = truncated_list(items, 200)
    kept = result.split(",")[:-1]
    assert result.endswith(f",+{len(items) - len(kept)} more")
    assert kept == items[:len(kept)]


# "+100 more" (9 characters) is the shortest possible result for 100 items.
@pytest.mark.parametrize("budget", [9, 10, 30, 31, 100, 257, 1000])
def test_truncated_list_within_budget(budget):
    assert len(truncated_list(addresses(100), budget)) <= budget


def test_truncated_list_encodes_items():
    assert truncated_list(["jörg@example.com"], 100) == \
        "j%C3%B6rg@example.com"


def test_merge_keeps_existing_keys():
    merged = merge_metadata(KMS_METADATA, {"status": "delivered"}, {})
    for key, value in KMS_METADATA.items():
        assert merged[key] == value


def test_merge_replaces_existing_field():
    merged = merge_metadata({"status": "old"}, {"status": "delivered"}, {})
    assert merged["status"] == "delivered"


def test_merge_drops_stale_empty_list():
    merged = merge_metadata({"failed_recipients": "a@example.com"}, {},
                            {"failed_recipients": []})
    assert "failed_recipients" not in merged


def test_merge_field_values_made_ascii():
    merged = merge_metadata({}, {"reason": "Zurückgewiesen"}, {})
    assert merged["reason"] == "Zur%C3%BCckgewiesen"


def test_merge_short_lists_complete():
    merged = merge_metadata({}, {}, {"delivered_to": ["a@example.com",
                                                      "b@example.com"]})
    assert merged["delivered_to"] == "a@example.com,b@example.com"


def test_merge_long_lists_within_limit():
    merged = merge_metadata(
        KMS_METADATA,
        {"processed": "true", "status": "partial"},
        {"delivered_to": addresses(200, "d"),
         "blocked_recipients": addresses(200, "b"),
         "failed_recipients": addresses(200, "f")})
    assert metadata_size(merged) <= METADATA_LIMIT_BYTES


def test_merge_long_lists_each_get_a_share():
    merged = merge_metadata(
        {}, {}, {"delivered_to": addresses(200, "d"),
                 "failed_recipients": addresses(200, "f")})
    assert merged["delivered_to"].startswith("d0000@example.com")
    assert merged["failed_recipients"].startswith("f0000@example.com")


def test_merge_truncated_list_reports_rest():
    merged = merge_metadata({}, {}, {"delivered_to": addresses(500)})
    assert merged["delivered_to"].endswith(" more")


def test_merge_does_not_change_existing_dict():
    existing = {"status": "old"}
    merge_metadata(existing, {"status": "new"}, {})
    assert existing == {"status": "old"}


def test_metadata_size_counts_utf8_bytes():
    assert metadata_size({"k": "ü"}) == 3
