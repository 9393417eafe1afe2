"""Two worker processes share one queue with 100 messages.

Each message is received by one worker at a time, its visibility is
extended while it is processed, and the audit write is conditional on
the ETag read, so no recipient gets a message twice.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import (Recorder, health_ok, send_simple,
                                   start_worker, tally)

pytestmark = pytest.mark.e2e

MESSAGES = 100


def test_two_workers_one_queue(stack: Stack, reliability: Recorder) -> None:
    com = stack.com
    keys = {f"c{n}@{com}": send_simple(stack, com, f"c{n}")
            for n in range(MESSAGES)}
    first = start_worker(stack, VISIBILITY_TIMEOUT="30")
    second = start_worker(stack, VISIBILITY_TIMEOUT="30")

    stack.wait_received(MESSAGES, timeout=180)
    stack.wait_drained(timeout=60)
    by_worker: dict[str, int] = {}
    for key in keys.values():
        name = stack.metadata(com, key).get("processed_by", "?")
        by_worker[name] = by_worker.get(name, 0) + 1
    processed = [first.metric("emails_processed_total", domain=com,
                              status="delivered"),
                 second.metric("emails_processed_total", domain=com,
                               status="delivered")]
    result = tally(stack, keys)
    reliability.record(
        "two workers on one queue, 100 messages",
        "none delivered twice, none lost",
        messages=MESSAGES, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        split="/".join(str(int(n)) for n in processed))

    assert result.lost == []
    assert result.duplicated == {}
    assert sum(processed) == MESSAGES
    assert health_ok(first)
    assert health_ok(second)
