"""The SMTP server is down for 20 s while 20 messages wait.

Connection failures are temporary: every message is retried with a
growing delay and, once the server is back, delivered exactly once.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, health_ok, send_many,
                                   start_worker, tally)

pytestmark = pytest.mark.e2e

MESSAGES = 20
OUTAGE_SECONDS = 20.0


def test_smtp_down_20_seconds(stack: Stack, reliability: Recorder) -> None:
    stack.sink.stop()
    sent = send_many(stack, MESSAGES)
    worker = start_worker(stack)
    down_since = time.monotonic()

    def connection_errors() -> float:
        return sum(worker.metric("smtp_errors_total", domain=d,
                                 kind="connection") for d in stack.domains)
    wait_until(lambda: connection_errors() >= MESSAGES, 30,
               "a failed attempt per message", worker=worker)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
    errors = connection_errors()
    stack.sink.start()
    # With RETRY_DELAY_SECONDS=1 the delay doubles per attempt, so after
# 20 s the next retry may be 16 or 32 s away.
    stack.wait_received(MESSAGES, timeout=120)
    stack.wait_drained(timeout=60)
    statuses = [stack.metadata(domain, key).get("status")
                for domain, key in sent.values()]
    result = tally(stack, sent)
    reliability.record(
        "SMTP server down for 20 s, 20 messages queued",
        "all delivered once after it returns, none parked",
        messages=MESSAGES, lost=len(result.lost),
        duplicated=result.duplicate_copies,
        parked=sum(s != "delivered" for s in statuses),
        failed_attempts=int(errors))

    assert result.lost == []
    assert result.duplicated == {}
    assert statuses == ["delivered"] * MESSAGES
    assert health_ok(worker)
