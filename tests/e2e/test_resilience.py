"""Bad input and an unavailable SMTP server neither stop nor lose mail."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.inject import ses_message_id, ses_received
from tests.e2e.conftest import (Stack, WorkerProcess, build_message,
                                open_stack, wait_until)

pytestmark = pytest.mark.e2e

SENDER = "dave@sender.example"


def send_simple(stack: Stack, domain: str, local: str) -> str:
    recipient = f"{local}@{domain}"
    return stack.deliver(domain, build_message(SENDER, recipient, local),
                         SENDER, [recipient])


def recipient_counts(stack: Stack) -> Counter[str]:
    return Counter(r for m in stack.sink.received() for r in m.rcpt_tos)


# -- poison messages ---------------------------------------------------


@dataclass
class PoisonRun:
    stack: Stack
    worker: WorkerProcess
    health: dict[str, object]


@pytest.fixture(scope="module")
def poisoned(moto_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[PoisonRun]:
    """A body that is not JSON and a notification for a missing object,
    followed by good mail before and after they are given up."""
    with open_stack(moto_url, tmp_path_factory.mktemp("poison")) as stack:
        com = stack.com
        stack.send_body(com, "this is not JSON {")
        missing = ses_message_id()
        stack.send_body(com, json.dumps(ses_received(
            stack.bucket(com), missing, SENDER, [f"lost@{com}"], missing)))
        send_simple(stack, com, "before")
        worker = stack.start_worker(MAX_RECEIVE_COUNT="2")
        stack.wait_received(1)
        stack.wait_drained()
        send_simple(stack, com, "after")
        stack.wait_received(2)
        stack.wait_drained()
        _status, health = worker.get_json("/health")
        yield PoisonRun(stack, worker, health)


def test_poison_earlier_good_message_delivered(poisoned: PoisonRun) -> None:
    counts = recipient_counts(poisoned.stack)
    assert counts[f"before@{poisoned.stack.com}"] == 1


def test_poison_later_good_message_delivered(poisoned: PoisonRun) -> None:
    counts = recipient_counts(poisoned.stack)
    assert counts[f"after@{poisoned.stack.com}"] == 1


def test_poison_missing_object_delivers_nothing(poisoned: PoisonRun) -> None:
    counts = recipient_counts(poisoned.stack)
    assert counts[f"lost@{poisoned.stack.com}"] == 0


def test_poison_given_up_after_max_receive_count(
        poisoned: PoisonRun) -> None:
    failed = poisoned.worker.metric("emails_processed_total",
                                    domain=poisoned.stack.com,
                                    status="failed")
    assert failed == 2


def test_poison_thread_alive(poisoned: PoisonRun) -> None:
    domains = poisoned.health["domains"]
    assert isinstance(domains, dict)
    assert domains[poisoned.stack.com]["thread_alive"] is True


def test_poison_worker_still_running(poisoned: PoisonRun) -> None:
    assert poisoned.worker.returncode is None


def test_poison_body_logged_with_reason(poisoned: PoisonRun) -> None:
    assert "not JSON" in poisoned.worker.stderr_text()


def test_poison_missing_object_logged(
        poisoned: PoisonRun) -> None:
    assert "NoSuchKey" in poisoned.worker.stderr_text()


def test_poison_no_traceback_logged(poisoned: PoisonRun) -> None:
    assert "Traceback" not in poisoned.worker.stderr_text()


# -- SMTP server down for a while ---------------------------------------


@dataclass
class OutageRun:
    stack: Stack
    worker: WorkerProcess
    expected: list[str]
    keys: dict[str, str]
    errors_during_outage: float


@pytest.fixture(scope="module")
def outage(moto_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[OutageRun]:
    with open_stack(moto_url, tmp_path_factory.mktemp("outage")) as stack:
        stack.sink.stop()
        keys = {}
        for domain in stack.domains:
            for local in ("one", "two"):
                keys[f"{local}@{domain}"] = send_simple(stack, domain, local)
        worker = stack.start_worker()

        def connection_errors() -> float:
            return sum(worker.metric("smtp_errors_total", domain=d,
                                     kind="connection")
                       for d in stack.domains)
        # One failed attempt per message, then at least one failed retry.
        errors = wait_until(lambda: connection_errors() > len(keys) and
                            connection_errors(),
                            description="failed retries while SMTP is down",
                            worker=worker)
        stack.sink.start()
        stack.wait_received(len(keys), timeout=40)
        stack.wait_drained(timeout=40)
        yield OutageRun(stack, worker, sorted(keys), keys, errors)


def test_outage_was_noticed(outage: OutageRun) -> None:
    assert outage.errors_during_outage > len(outage.expected)


def test_outage_nothing_lost(outage: OutageRun) -> None:
    assert sorted(recipient_counts(outage.stack)) == outage.expected


def test_outage_nothing_delivered_twice(outage: OutageRun) -> None:
    counts = recipient_counts(outage.stack)
    assert [r for r, n in counts.items() if n != 1] == []


def test_outage_objects_marked_delivered(outage: OutageRun) -> None:
    stack = outage.stack
    statuses = [stack.metadata(r.partition("@")[2], key)["status"]
                for r, key in outage.keys.items()]
    assert statuses == ["delivered"] * len(outage.keys)


def test_outage_worker_healthy_afterwards(outage: OutageRun) -> None:
    assert outage.worker.get_json("/health")[0] == 200


# -- one recipient deferred -------------------------------------------


@pytest.fixture(scope="module")
def deferred(moto_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Stack, str]]:
    """RCPT TO for one of two recipients gets 451 until the first
    attempt is over."""
    with open_stack(moto_url, tmp_path_factory.mktemp("defer")) as stack:
        com = stack.com
        stack.sink.rcpt_replies[f"later@{com}"] = "451 4.3.0 try again"
        key = stack.deliver(com, build_message(SENDER, f"now@{com}", "x"),
                            SENDER, [f"now@{com}", f"later@{com}"])
        worker = stack.start_worker()
        wait_until(lambda: worker.metric("smtp_errors_total", domain=com,
                                         kind="temporary") >= 1,
                   description="a deferred recipient", worker=worker)
        del stack.sink.rcpt_replies[f"later@{com}"]
        stack.wait_received(2)
        stack.wait_drained()
        yield stack, key


def test_deferred_recipient_retried_alone(
        deferred: tuple[Stack, str]) -> None:
    stack, _key = deferred
    com = stack.com
    assert [m.rcpt_tos for m in stack.sink.received()] == [
        (f"now@{com}",), (f"later@{com}",)]


def test_deferred_final_status_delivered(
        deferred: tuple[Stack, str]) -> None:
    stack, key = deferred
    assert stack.metadata(stack.com, key)["status"] == "delivered"


def test_deferred_both_listed_delivered(
        deferred: tuple[Stack, str]) -> None:
    stack, key = deferred
    com = stack.com
    assert stack.metadata(stack.com, key)["delivered_to"] == \
        f"now@{com},later@{com}"
