"""SIGTERM while the SMTP server sits in DATA.

The worker exits 0 within SHUTDOWN_TIMEOUT, makes the unfinished
message visible again, and a restarted worker delivers it.  The sink
drops a DATA whose client hung up, so the message arrives exactly once.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, recipient_counts, send_simple,
                                   start_worker, tally)

pytestmark = pytest.mark.e2e

SHUTDOWN_TIMEOUT = 5.0
# Time for the interpreter to exit after the worker's last step.
EXIT_SLACK = 3.0


def test_sigterm_during_slow_data(stack: Stack,
                                  reliability: Recorder) -> None:
    com = stack.com
    stack.sink.data_delay = 60.0
    key = send_simple(stack, com, "slow")
    worker = start_worker(stack, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    wait_until(lambda: stack.sink.data_count >= 1, 30, "DATA under way",
               worker=worker)
    status = worker.stop(timeout=SHUTDOWN_TIMEOUT + 30)
    delivered_before = sum(recipient_counts(stack).values())

    stack.sink.data_delay = 0.0
    start_worker(stack)
    metadata = stack.wait_processed(com, key, timeout=60)
    stack.wait_drained(timeout=30)
    result = tally(stack, [f"slow@{com}"])
    reliability.record(
        "SIGTERM during a 60 s DATA, SHUTDOWN_TIMEOUT 5 s, restart",
        "exit 0 within SHUTDOWN_TIMEOUT; delivered by the next worker",
        messages=1, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        exit_status=status, stop_seconds=round(worker.stopped_after or 0, 1))

    assert status == 0
    assert worker.stopped_after is not None
    assert worker.stopped_after <= SHUTDOWN_TIMEOUT + EXIT_SLACK
    assert delivered_before == 0
    assert result.lost == []
    assert result.duplicated == {}
    assert metadata["status"] == "delivered"
