"""SQS returns throttling errors, 500s or drops connections.

The worker reaches moto through the fault proxy.  botocore retries a
few times and the poller backs off after that.  A failed delete leaves
the message to come back and be recognised as processed, so no thread dies and
every message is delivered exactly once.
"""

from __future__ import annotations

import time

import pytest

from devstack.fault_proxy import DROP, SERVER_ERROR, THROTTLE, FaultProxy
from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, health_ok, log_lines,
                                   send_many, start_worker, tally)

pytestmark = pytest.mark.e2e

MESSAGES = 20
# Per operation.  botocore makes up to 5 attempts per call and the two
# domains call at the same time, so 15 faults make some calls fail
# outright: a failed receive backs the poller off, a failed delete
# leaves finished messages to come back after VISIBILITY_TIMEOUT.
FAULTS = {"ReceiveMessage": 15, "DeleteMessageBatch": 15}
# Small enough that a message whose delete failed comes back soon.
VISIBILITY = "15"


@pytest.mark.parametrize("kind", [THROTTLE, SERVER_ERROR, DROP])
def test_sqs_errors_lose_nothing(stack: Stack, proxy: FaultProxy,
                                 reliability: Recorder, kind: str) -> None:
    worker = start_worker(stack, endpoint=proxy.url,
                          VISIBILITY_TIMEOUT=VISIBILITY)
    for operation, count in FAULTS.items():
        proxy.add("sqs", kind, operation=operation, count=count)
    sent = send_many(stack, MESSAGES)

    stack.wait_received(MESSAGES, timeout=150)
    stack.wait_drained(timeout=90)
    injected = {op: n for (service, op, k), n in proxy.counts.items()
                if service == "sqs" and k == kind}
    result = tally(stack, sent)
    reliability.record(
        f"SQS {kind} on 15 receives and 15 batch deletes",
        "no thread death, all delivered once",
        messages=MESSAGES, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        injected=sum(injected.values()),
        failed_calls_logged=len(log_lines(worker, "failed")),
        duplicates_acknowledged=sum(
            int(worker.metric("emails_processed_total", domain=d,
                              status="duplicate")) for d in stack.domains))

    assert injected == FAULTS
    assert result.lost == []
    assert result.duplicated == {}
    assert health_ok(worker)


def test_sqs_unavailable_30_seconds(stack: Stack, proxy: FaultProxy,
                                    reliability: Recorder) -> None:
    worker = start_worker(stack, endpoint=proxy.url,
                          VISIBILITY_TIMEOUT=VISIBILITY)
    before = send_many(stack, 6, prefix="before")
    stack.wait_received(6, timeout=30)
    proxy.add("sqs", DROP, seconds=30)
    started = time.monotonic()
    during = send_many(stack, 10, prefix="during")

    def domain_errors() -> list[str]:
        _status, body = worker.get_json("/health")
        return [d["last_error"] for d in body["domains"].values()
                if d["last_error"]]
    errors = wait_until(domain_errors, 40, "the outage in /health",
                        worker=worker)
    stack.wait_received(16, timeout=150)
    recovered_after = time.monotonic() - started
    stack.wait_drained(timeout=90)
    wait_until(lambda: health_ok(worker), 30, "/health back to 200",
               worker=worker)
    result = tally(stack, {**before, **during})
    reliability.record(
        "SQS unreachable (connections dropped) for 30 s",
        "polling backs off and recovers; all delivered once",
        messages=16, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        delivered_after_s=round(recovered_after),
        health_error=errors[0][:60])

    assert result.lost == []
    assert result.duplicated == {}
    assert worker.returncode is None
