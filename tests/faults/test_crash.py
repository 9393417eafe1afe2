"""kill -9 with 30 messages in flight, then a restart.

Nothing may be lost: every message comes back after VISIBILITY_TIMEOUT.
A message whose audit was written before the kill is recognised as
processed and acknowledged.  A message that reached the SMTP server
before its audit was written is sent again: the design accepts that
duplicate, so duplicates are bounded by those unrecorded messages.
"""

from __future__ import annotations

import signal

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, recipient_counts, send_many,
                                   start_worker, tally)

pytestmark = pytest.mark.e2e

MESSAGES = 30
# Threads per domain, so that every message is in flight at once.
THREADS = "15"
VISIBILITY = "10"


def test_kill_9_then_restart(stack: Stack, reliability: Recorder) -> None:
    stack.sink.data_delay = 1.0
    sent = send_many(stack, MESSAGES)
    worker = start_worker(stack, WORKER_THREADS=THREADS,
                          VISIBILITY_TIMEOUT=VISIBILITY)
    wait_until(lambda: sum(worker.metric("emails_in_flight", domain=d)
                           for d in stack.domains) >= MESSAGES, 60,
               "every message in flight", interval=0.2, worker=worker)
    # Kill in the middle of the burst of DATA replies, when the audit
    # of some delivered messages is still being written.
    wait_until(lambda: len(stack.sink.received()) >= MESSAGES // 3, 60,
               "the first deliveries", interval=0.01, worker=worker)
    worker.send_signal(signal.SIGKILL)
    assert worker.process is not None
    worker.process.wait(timeout=10)

    before = recipient_counts(stack)
    unrecorded = [r for r in before
                  if stack.metadata(*sent[r]).get("processed") != "true"]
    stack.sink.data_delay = 0.0
    start_worker(stack, VISIBILITY_TIMEOUT=VISIBILITY)
    stack.wait_received(MESSAGES + len(unrecorded), timeout=120)
    stack.wait_drained(timeout=60)
    statuses = [stack.metadata(*where).get("status")
                for where in sent.values()]
    result = tally(stack, sent)
    reliability.record(
        "kill -9 with 30 messages in flight, restart",
        "nothing lost; duplicates only for messages delivered but not "
        "yet recorded at the kill",
        messages=MESSAGES, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        delivered_before_kill=sum(before.values()),
        unrecorded_at_kill=len(unrecorded))

    assert result.lost == []
    assert result.duplicate_copies <= len(unrecorded)
    assert set(result.duplicated) <= set(unrecorded)
    assert statuses == ["delivered"] * MESSAGES
