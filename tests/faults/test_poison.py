"""Bodies that are no notification at all.

They are retried until MAX_RECEIVE_COUNT, then left for the dead-letter
queue when the queue has one, or else deleted with the reason logged.
Good mail around them is delivered and no polling thread dies.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, dead_letter_depth,
                                   dead_letter_url, health_ok, log_lines,
                                   send_many, start_worker, tally)

pytestmark = pytest.mark.e2e

POISON = [
    "this is not JSON {",
    json.dumps({"hello": "world"}),
    json.dumps({"Type": "Notification", "Message": "not JSON either"}),
    json.dumps([1, 2, 3]),
]
GOOD = 4
# Equal to the maxReceiveCount of the redrive policy the stack creates.
MAX_RECEIVE_COUNT = 3


def send_poison(stack: Stack) -> None:
    for body in POISON:
        stack.send_body(stack.com, body)


def test_poison_parked_in_dead_letter_queue(dlq_stack: Stack,
                                            reliability: Recorder) -> None:
    stack = dlq_stack
    send_poison(stack)
    sent = send_many(stack, GOOD)
    worker = start_worker(stack, MAX_RECEIVE_COUNT=str(MAX_RECEIVE_COUNT))

    wait_until(lambda: dead_letter_depth(stack, stack.com) == len(POISON),
               90, "the poison bodies in the dead-letter queue",
               interval=0.5, worker=worker)
    stack.wait_drained(timeout=30)
    parked = sorted(m["Body"] for m in stack.aws.sqs.receive_message(
        QueueUrl=dead_letter_url(stack, stack.com), MaxNumberOfMessages=10,
        VisibilityTimeout=60).get("Messages", []))
    reasons = log_lines(worker, "leaving it for the dead-letter queue")
    result = tally(stack, sent)
    reliability.record(
        "poison bodies, queue with a dead-letter queue",
        f"parked in the DLQ after MAX_RECEIVE_COUNT={MAX_RECEIVE_COUNT}",
        messages=len(POISON) + GOOD, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=len(parked),
        reasons_logged=len(reasons))

    assert parked == sorted(POISON)
    assert len(reasons) == len(POISON)
    assert result.lost == []
    assert result.duplicated == {}
    assert health_ok(worker)


def test_poison_deleted_without_dead_letter_queue(
        stack: Stack, reliability: Recorder) -> None:
    send_poison(stack)
    sent = send_many(stack, GOOD)
    worker = start_worker(stack, MAX_RECEIVE_COUNT=str(MAX_RECEIVE_COUNT))

    def given_up() -> float:
        return worker.metric("emails_processed_total", domain=stack.com,
                             status="failed")
    wait_until(lambda: given_up() >= len(POISON), 90,
               "the poison bodies given up", interval=0.5, worker=worker)
    stack.wait_drained(timeout=30)
    reasons = log_lines(worker, "deleting it (no dead-letter queue)")
    attempts = log_lines(worker, "cannot process (attempt")
    result = tally(stack, sent)
    reliability.record(
        "poison bodies, queue without a dead-letter queue",
        "deleted after MAX_RECEIVE_COUNT with the reason logged",
        messages=len(POISON) + GOOD, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=len(reasons),
        attempts_logged=len(attempts))

    assert len(reasons) == len(POISON)
    assert all("body:" in line for line in reasons)
    assert len(attempts) == len(POISON) * (MAX_RECEIVE_COUNT - 1)
    assert result.lost == []
    assert result.duplicated == {}
    assert health_ok(worker)
