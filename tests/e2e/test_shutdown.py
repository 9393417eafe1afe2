"""SIGTERM with messages in flight: exit 0 in time and lose nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import (Stack, WorkerProcess, build_message,
                                open_stack, wait_until)

pytestmark = pytest.mark.e2e

MESSAGES = 6
# Time for the interpreter to exit after the worker's last step.  The
# worker itself must be done within SHUTDOWN_TIMEOUT.
EXIT_SLACK = 2.0


@dataclass
class Stopped:
    stack: Stack
    worker: WorkerProcess
    status: int
    shutdown_timeout: float
    health_while_stopping: int | None
    keys: dict[str, str]
    hidden: int = 0
    queued: list[str] = field(default_factory=list)


def key_of(body: str) -> str:
    document = json.loads(body)
    if "Message" in document:
        document = json.loads(document["Message"])
    return str(document["receipt"]["action"]["objectKey"])


def stop_during_data(stack: Stack, data_delay: float,
                     shutdown_timeout: float) -> Stopped:
    """Queue messages, send SIGTERM while the SMTP server sits in DATA."""
    com = stack.com
    stack.sink.data_delay = data_delay
    keys = {}
    for number in range(MESSAGES):
        recipient = f"m{number}@{com}"
        keys[recipient] = stack.deliver(
            com, build_message("dave@sender.example", recipient,
                               f"n{number}"),
            "dave@sender.example", [recipient])
    worker = stack.start_worker(WORKER_THREADS="2",
                                SHUTDOWN_TIMEOUT=str(shutdown_timeout))
    wait_until(lambda: stack.sink.data_count >= 1,
               description="a message in DATA", worker=worker)
    worker.send_signal()
    health_status = first_unhealthy_status(worker)
    status = worker.stop(timeout=shutdown_timeout + 30)
    stopped = Stopped(stack, worker, status, shutdown_timeout,
                      health_status, keys)
    stopped.hidden = not_visible(stopped)
    stopped.queued = queued_keys(stopped)
    return stopped


def first_unhealthy_status(worker: WorkerProcess) -> int | None:
    """Poll /health until its status is not 200 and return that status.

    Returns None when the worker stops serving /health first.
    """
    seen: list[int] = []

    def answered_unhealthy() -> bool:
        try:
            status = worker.get(worker.health_port, "/health")[0]
        except OSError:
            return True
        if status != 200:
            seen.append(status)
            return True
        return False
    try:
        wait_until(answered_unhealthy, timeout=10, interval=0.05,
                   description="/health to report the shutdown")
    except AssertionError:
        return 200
    return seen[0] if seen else None


def queued_keys(stopped: Stopped) -> list[str]:
    return sorted(key_of(b) for b in stopped.stack.queued_bodies(
        stopped.stack.com))


def delivered_keys(stopped: Stopped) -> list[str]:
    return sorted(stopped.keys[r] for m in stopped.stack.sink.received()
                  for r in m.rcpt_tos)


def not_visible(stopped: Stopped) -> int:
    attributes = stopped.stack.aws.sqs.get_queue_attributes(
        QueueUrl=stopped.stack.queues[stopped.stack.com],
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"])


class TestInFlightFinishes:
    """DATA takes 2 s, SHUTDOWN_TIMEOUT is 15 s: in-flight mail finishes."""

    @pytest.fixture(scope="class")
    @classmethod
    def stopped(cls, moto_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Stopped]:
        with open_stack(moto_url, tmp_path_factory.mktemp("stop")) as stack:
            yield stop_during_data(stack, data_delay=2.0,
                                   shutdown_timeout=15.0)

    def test_shutdown_exit_status_0(self, stopped: Stopped) -> None:
        assert stopped.status == 0

    def test_shutdown_within_timeout(self, stopped: Stopped) -> None:
        assert stopped.worker.stopped_after is not None
        assert stopped.worker.stopped_after <= \
            stopped.shutdown_timeout + EXIT_SLACK

    def test_shutdown_health_503_while_stopping(self,
                                                stopped: Stopped) -> None:
        assert stopped.health_while_stopping == 503

    def test_shutdown_in_flight_delivered(self, stopped: Stopped) -> None:
        assert delivered_keys(stopped) != []

    def test_shutdown_delivered_were_acknowledged(self,
                                                  stopped: Stopped) -> None:
        queued = set(stopped.queued)
        assert [k for k in delivered_keys(stopped) if k in queued] == []

    def test_shutdown_delivered_were_audited(self, stopped: Stopped) -> None:
        stack = stopped.stack
        statuses = [stack.metadata(stack.com, key).get("status")
                    for key in delivered_keys(stopped)]
        assert set(statuses) == {"delivered"}

    def test_shutdown_nothing_lost(self, stopped: Stopped) -> None:
        accounted = set(delivered_keys(stopped)) | set(stopped.queued)
        assert accounted == set(stopped.keys.values())

    def test_shutdown_nothing_delivered_twice(self, stopped: Stopped) -> None:
        delivered = delivered_keys(stopped)
        assert len(delivered) == len(set(delivered))

    def test_shutdown_leaves_nothing_invisible(self,
                                               stopped: Stopped) -> None:
        assert stopped.hidden == 0


class TestInFlightOutlastsTimeout:
    """DATA takes 60 s, SHUTDOWN_TIMEOUT is 2 s: in-flight mail returns."""

    @pytest.fixture(scope="class")
    @classmethod
    def stopped(cls, moto_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Stopped]:
        with open_stack(moto_url, tmp_path_factory.mktemp("stop")) as stack:
            yield stop_during_data(stack, data_delay=60.0,
                                   shutdown_timeout=2.0)

    def test_shutdown_timeout_exit_status_0(self, stopped: Stopped) -> None:
        assert stopped.status == 0

    def test_shutdown_timeout_respected(self, stopped: Stopped) -> None:
        assert stopped.worker.stopped_after is not None
        assert stopped.worker.stopped_after <= \
            stopped.shutdown_timeout + EXIT_SLACK

    def test_shutdown_timeout_nothing_delivered(self,
                                                stopped: Stopped) -> None:
        assert stopped.stack.sink.received() == []

    def test_shutdown_timeout_messages_visible(
            self, stopped: Stopped) -> None:
        assert stopped.queued == sorted(stopped.keys.values())

    def test_shutdown_timeout_nothing_invisible(
            self, stopped: Stopped) -> None:
        assert stopped.hidden == 0
