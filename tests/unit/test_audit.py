"""The outcome is written onto the S3 object once it is final."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from email_worker.pipeline.steps.audit import AuditStep, final_status
from tests.unit.support import (BUCKET, KEY, RecordingStore, make_context,
                                make_services, stored_object)

NOW = datetime(2026, 12, 4, 15, 0, 0, tzinfo=timezone.utc)
KMS_KEYS = {"x-amz-key-v2": "c2VjcmV0", "x-amz-iv": "aXY="}


def run_audit(recipients=("alice@example.com",), delivered=(),
              blocked=None, failed=None, deferred=None,
              already_delivered=(), metadata=None):
    store = RecordingStore()
    context = make_context(recipients=list(recipients),
                           stored=stored_object(metadata=metadata))
    context.delivered = list(delivered)
    context.already_delivered = list(already_delivered)
    context.blocked = dict(blocked or {})
    context.failed = dict(failed or {})
    context.deferred = dict(deferred or {})
    AuditStep(make_services(store=store), clock=lambda: NOW).process(
        context)
    return context, store


@pytest.mark.parametrize("delivered,blocked,failed,status", [
    (["a"], [], [], "delivered"),
    (["a", "b"], [], [], "delivered"),
    (["a"], ["b"], [], "partial"),
    (["a"], [], ["c"], "partial"),
    (["a"], ["b"], ["c"], "partial"),
    ([], ["b"], [], "blocked"),
    ([], ["b", "c"], [], "blocked"),
    ([], [], ["c"], "failed"),
    ([], ["b"], ["c"], "failed"),
    ([], [], [], "failed")])
def test_final_status_table(delivered, blocked, failed, status):
    assert final_status(delivered, blocked, failed) == status


def test_delivered_metadata_fields():
    context, store = run_audit(delivered=["alice@example.com"])
    metadata = store.replaced[-1]
    assert metadata["processed"] == "true"
    assert metadata["processed_at"] == "2026-12-04T15:00:00+00:00"
    assert metadata["processed_by"] == "worker-test"
    assert metadata["status"] == "delivered"
    assert metadata["delivered_to"] == "alice@example.com"


def test_delivered_sets_context_status():
    context, _ = run_audit(delivered=["alice@example.com"])
    assert context.status == "delivered"


def test_delivered_omits_empty_lists():
    _, store = run_audit(delivered=["alice@example.com"])
    assert "blocked_recipients" not in store.replaced[-1]
    assert "failed_recipients" not in store.replaced[-1]
    assert "blocked_sender" not in store.replaced[-1]


def test_metadata_values_ascii():
    _, store = run_audit(delivered=["alice@example.com"],
                         failed={"bob@example.com": "550 Zurückgewiesen"})
    for key, value in store.replaced[-1].items():
        assert key.isascii()
        assert value.isascii()


def test_existing_metadata_kept():
    _, store = run_audit(delivered=["alice@example.com"],
                         metadata=KMS_KEYS)
    metadata = store.replaced[-1]
    assert metadata["x-amz-key-v2"] == "c2VjcmV0"
    assert metadata["x-amz-iv"] == "aXY="


def test_partial_lists_recipients():
    _, store = run_audit(
        recipients=["alice@example.com", "carol@example.com"],
        delivered=["alice@example.com"],
        blocked={"bob@example.com": "spam@bad.example"},
        failed={"carol@example.com": "550 5.1.1 unknown"})
    metadata = store.replaced[-1]
    assert metadata["status"] == "partial"
    assert metadata["delivered_to"] == "alice@example.com"
    assert metadata["blocked_recipients"] == "bob@example.com"
    assert metadata["failed_recipients"] == "carol@example.com"
    assert metadata["blocked_sender"] == "spam@bad.example"


def test_earlier_deliveries_listed():
    _, store = run_audit(
        recipients=["alice@example.com", "bob@example.com"],
        already_delivered=["alice@example.com"],
        delivered=["bob@example.com"])
    assert store.replaced[-1]["delivered_to"] == \
        "alice@example.com,bob@example.com"
    assert store.replaced[-1]["status"] == "delivered"


def test_failed_metadata():
    _, store = run_audit(failed={"alice@example.com": "550 5.1.1 unknown"})
    assert store.replaced[-1]["status"] == "failed"
    assert store.replaced[-1]["failed_recipients"] == "alice@example.com"


def test_failed_object_not_deleted():
    _, store = run_audit(failed={"alice@example.com": "550 5.1.1 unknown"})
    assert store.deleted == []


def test_blocked_object_deleted():
    _, store = run_audit(recipients=[],
                         blocked={"alice@example.com": "spam@bad.example"})
    assert store.deleted == [(BUCKET, KEY)]


def test_blocked_metadata_written_before_delete():
    _, store = run_audit(recipients=[],
                         blocked={"alice@example.com": "spam@bad.example"})
    assert store.calls == ["replace_metadata", "delete"]
    assert store.replaced[-1]["status"] == "blocked"
    assert store.replaced[-1]["blocked_sender"] == "spam@bad.example"


def test_partial_with_blocked_not_deleted():
    _, store = run_audit(delivered=["alice@example.com"],
                         blocked={"bob@example.com": "spam@bad.example"})
    assert store.deleted == []


def test_deferred_records_progress_only():
    context, store = run_audit(
        recipients=["alice@example.com", "bob@example.com"],
        delivered=["alice@example.com"],
        deferred={"bob@example.com": "450 4.2.0 try later"})
    metadata = store.replaced[-1]
    assert metadata["delivered_to"] == "alice@example.com"
    assert "processed" not in metadata
    assert "status" not in metadata
    assert context.status is None


def test_deferred_keeps_existing_metadata():
    _, store = run_audit(
        delivered=["alice@example.com"],
        deferred={"bob@example.com": "450 4.2.0 try later"},
        metadata=KMS_KEYS)
    assert store.replaced[-1]["x-amz-key-v2"] == "c2VjcmV0"


def test_deferred_adds_to_earlier_progress():
    _, store = run_audit(
        recipients=["alice@example.com", "bob@example.com",
                    "carol@example.com"],
        already_delivered=["alice@example.com"],
        delivered=["bob@example.com"],
        deferred={"carol@example.com": "450 4.2.0 try later"},
        metadata={"delivered_to": "alice@example.com"})
    assert store.replaced[-1]["delivered_to"] == \
        "alice@example.com,bob@example.com"


def test_deferred_without_progress_writes_nothing():
    _, store = run_audit(deferred={"alice@example.com": "421 closing"})
    assert store.calls == []


def test_deferred_never_deletes():
    _, store = run_audit(
        delivered=["alice@example.com"],
        blocked={"bob@example.com": "spam@bad.example"},
        deferred={"carol@example.com": "450 4.2.0 try later"})
    assert store.deleted == []


def test_audit_before_fetch_raises():
    context = make_context()
    step = AuditStep(make_services(), clock=lambda: NOW)
    with pytest.raises(RuntimeError):
        step.process(context)
