"""A notification whose S3 object does not exist.

A retry cannot make a missing key appear, so it is poison: retried until
MAX_RECEIVE_COUNT, then parked in the dead-letter queue or, without
one, deleted with the reason logged.  Nothing is delivered for it.
"""

from __future__ import annotations

import json

import pytest

from devstack.inject import ses_message_id, ses_received, sns_wrap
from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (SENDER, Recorder, dead_letter_depth,
                                   health_ok, log_lines, recipient_counts,
                                   send_many, start_worker, tally)

pytestmark = pytest.mark.e2e

MAX_RECEIVE_COUNT = 3


def notify_missing(stack: Stack) -> tuple[str, str]:
    key = ses_message_id()
    recipient = f"nobody@{stack.com}"
    stack.send_body(stack.com, json.dumps(sns_wrap(ses_received(
        stack.bucket(stack.com), key, SENDER, [recipient], key))))
    return key, recipient


@pytest.mark.parametrize("with_dlq", [True, False],
                         ids=["dead-letter-queue", "no-dead-letter-queue"])
def test_missing_object_parked(reliability: Recorder, with_dlq: bool,
                               request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(
        "dlq_stack" if with_dlq else "stack")
    key, recipient = notify_missing(stack)
    sent = send_many(stack, 2)
    worker = start_worker(stack, MAX_RECEIVE_COUNT=str(MAX_RECEIVE_COUNT))

    if with_dlq:
        wait_until(lambda: dead_letter_depth(stack, stack.com) == 1, 90,
                   "the notification in the dead-letter queue",
                   interval=0.5, worker=worker)
        reasons = log_lines(worker, "leaving it for the dead-letter queue")
    else:
        wait_until(lambda: log_lines(worker, "no dead-letter queue"), 90,
                   "the notification given up", worker=worker)
        reasons = log_lines(worker, "no dead-letter queue")
    stack.wait_drained(timeout=30)
    result = tally(stack, sent)
    reliability.record(
        "S3 key missing" + (", with DLQ" if with_dlq else ", no DLQ"),
        "parked after MAX_RECEIVE_COUNT (DLQ, or deleted and logged); "
        "nothing delivered",
        messages=3, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=len(reasons))

    assert len(reasons) == 1
    assert "NoSuchKey" in reasons[0]
    assert recipient_counts(stack)[recipient] == 0
    assert not stack.object_exists(stack.com, key)
    assert result.lost == []
    assert result.duplicated == {}
    assert health_ok(worker)
