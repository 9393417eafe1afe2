"""Per-recipient SMTP replies: 5xx, 4xx and a 421 that closes the session.

A 5xx is final for that recipient only.  A 4xx defers that recipient
alone, and the retry must not send a second copy to one that got 250.
A 421 ends the transaction, so no recipient of it counts as delivered.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, recipient_counts, send_simple,
                                   start_worker, tally)

pytestmark = pytest.mark.e2e


def test_smtp_550_and_250_partial(stack: Stack,
                                  reliability: Recorder) -> None:
    com = stack.com
    bad, good = f"gone@{com}", f"here@{com}"
    stack.sink.rcpt_replies[bad] = "550 5.1.1 unknown"
    key = send_simple(stack, com, "here", extra=[bad])
    start_worker(stack)

    metadata = stack.wait_processed(com, key, timeout=30)
    stack.wait_drained(timeout=30)
    counts = recipient_counts(stack)
    result = tally(stack, [good], parked=[bad])
    reliability.record(
        "SMTP 550 for one of two recipients",
        "status partial, failed_recipients set, SQS message deleted",
        messages=1, lost=len(result.lost),
        duplicated=result.duplicate_copies,
        parked=1 if metadata.get("failed_recipients") == bad else 0,
        status=metadata.get("status"))

    assert counts == {good: 1}
    assert metadata["status"] == "partial"
    assert metadata["failed_recipients"] == bad
    assert metadata["delivered_to"] == good
    assert stack.depth(com) == 0


def test_smtp_450_and_250_retries_only_deferred(
        stack: Stack, reliability: Recorder) -> None:
    com = stack.com
    later, now = f"later@{com}", f"now@{com}"
    stack.sink.rcpt_replies[later] = "450 4.2.0 later"
    key = send_simple(stack, com, "now", extra=[later])
    worker = start_worker(stack)

    # The first attempt records its progress without processed=true.
    def progress() -> dict[str, str] | None:
        metadata = stack.metadata(com, key)
        return metadata if metadata.get("delivered_to") else None
    partial = wait_until(progress, 30, "delivered_to after the 450",
                         worker=worker)
    del stack.sink.rcpt_replies[later]
    metadata = stack.wait_processed(com, key, timeout=60)
    stack.wait_drained(timeout=30)
    counts = recipient_counts(stack)
    result = tally(stack, [now, later])
    reliability.record(
        "SMTP 450 for one of two recipients, then accepted",
        "the 250 recipient gets one copy; the 450 one after the retry",
        messages=1, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        status=metadata.get("status"))

    assert partial.get("processed") is None
    assert partial["delivered_to"] == now
    assert counts == {now: 1, later: 1}
    assert metadata["status"] == "delivered"
    assert metadata["delivered_to"] == f"{now},{later}"


@pytest.mark.parametrize("position", ["first", "second"])
def test_smtp_421_on_rcpt_loses_nobody(stack: Stack, reliability: Recorder,
                                       position: str) -> None:
    """421 on the first or second RCPT TO; the server then accepts."""
    com = stack.com
    recipients = [f"a@{com}", f"b@{com}"]
    closing = recipients[0] if position == "first" else recipients[1]
    stack.sink.rcpt_replies[closing] = "421 4.3.0 closing"
    key = send_simple(stack, com, "a", extra=[recipients[1]])
    worker = start_worker(stack)

    wait_until(lambda: worker.metric("smtp_errors_total", domain=com,
                                     kind="temporary") >= 1,
               30, "the 421 reply", worker=worker)
    early = recipient_counts(stack)
    del stack.sink.rcpt_replies[closing]
    metadata = stack.wait_processed(com, key, timeout=60)
    stack.wait_drained(timeout=30)
    result = tally(stack, recipients)
    reliability.record(
        f"SMTP 421 on the {position} RCPT TO, then accepted",
        "nothing counted as delivered before DATA; all delivered once",
        messages=1, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        status=metadata.get("status"),
        delivered_before_retry=sum(early.values()))

    assert sum(early.values()) == 0
    assert recipient_counts(stack) == {r: 1 for r in recipients}
    assert metadata["status"] == "delivered"
    assert sorted(metadata["delivered_to"].split(",")) == recipients
