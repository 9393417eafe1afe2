"""Every processed object carries the audit metadata; duplicates are quiet."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from tests.e2e.conftest import Stack, build_message, open_stack

pytestmark = pytest.mark.e2e

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
SENDER = "dave@sender.example"


@dataclass
class Run:
    stack: Stack
    delivered: str
    failed: str
    partial: str
    started: datetime
    finished: datetime
    before_redelivery: dict[str, str]
    after_redelivery: dict[str, str]


@pytest.fixture(scope="module")
def run(moto_url: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with open_stack(moto_url, tmp_path_factory.mktemp("audit")) as stack:
        com, net = stack.domains
        stack.sink.rcpt_replies[f"ghost@{net}"] = "550 5.1.1 no such user"
        stack.sink.rcpt_replies[f"nobody@{net}"] = "550 5.1.1 no such user"
        started = datetime.now(timezone.utc).replace(microsecond=0)

        delivered = stack.put(
            com, build_message(SENDER, f"alice@{com}", "delivered"),
            ContentType="message/rfc822", Metadata={"origin": "e2e-suite"})
        body = stack.notify(com, delivered, SENDER,
                            [f"alice@{com}", f"bob@{com}"])
        failed = stack.deliver(net, build_message(SENDER, f"nobody@{net}",
                                                  "failed"),
                               SENDER, [f"nobody@{net}"])
        partial = stack.deliver(net, build_message(SENDER, f"frank@{net}",
                                                   "partial"),
                                SENDER, [f"frank@{net}", f"ghost@{net}"])
        stack.start_worker()
        stack.wait_received(2)
        stack.wait_drained()
        for domain, key in ((com, delivered), (net, failed),
                            (net, partial)):
            stack.wait_processed(domain, key)
        finished = datetime.now(timezone.utc)

        # SQS delivers at least once: the same notification again.
        before = stack.metadata(com, delivered)
        stack.send_body(com, json.dumps(body))
        stack.wait_drained()
        after = stack.metadata(com, delivered)
        yield Run(stack, delivered, failed, partial, started, finished,
                  before, after)


def delivered_metadata(run: Run) -> dict[str, str]:
    return run.stack.metadata(run.stack.com, run.delivered)


def test_audit_processed_is_true(run: Run) -> None:
    assert delivered_metadata(run)["processed"] == "true"


def test_audit_processed_at_iso_offset(run: Run) -> None:
    assert ISO_UTC.match(delivered_metadata(run)["processed_at"])


def test_audit_processed_at_is_when_it_ran(run: Run) -> None:
    stamp = datetime.fromisoformat(delivered_metadata(run)["processed_at"])
    assert run.started <= stamp <= run.finished


def test_audit_processed_by_is_worker_name(run: Run) -> None:
    assert delivered_metadata(run)["processed_by"] == run.stack.worker_name


def test_audit_status_delivered(run: Run) -> None:
    assert delivered_metadata(run)["status"] == "delivered"


def test_audit_delivered_to_lists_recipients(run: Run) -> None:
    com = run.stack.com
    assert delivered_metadata(run)["delivered_to"] == \
        f"alice@{com},bob@{com}"


def test_audit_keeps_existing_metadata(run: Run) -> None:
    assert delivered_metadata(run)["origin"] == "e2e-suite"


def test_audit_keeps_content_type(run: Run) -> None:
    head = run.stack.aws.s3.head_object(
        Bucket=run.stack.bucket(run.stack.com), Key=run.delivered)
    assert head["ContentType"] == "message/rfc822"


def test_audit_all_refused_status_failed(run: Run) -> None:
    metadata = run.stack.metadata(run.stack.net, run.failed)
    assert metadata["status"] == "failed"


def test_audit_failed_recipients_listed(run: Run) -> None:
    metadata = run.stack.metadata(run.stack.net, run.failed)
    assert metadata["failed_recipients"] == f"nobody@{run.stack.net}"


def test_audit_permanent_failure_partial(run: Run) -> None:
    metadata = run.stack.metadata(run.stack.net, run.partial)
    assert metadata["status"] == "partial"


def test_audit_partial_lists_both(run: Run) -> None:
    net = run.stack.net
    metadata = run.stack.metadata(net, run.partial)
    listed = (metadata.get("delivered_to"), metadata.get("failed_recipients"))
    assert listed == (f"frank@{net}", f"ghost@{net}")


def test_audit_redelivery_delivers_nothing(run: Run) -> None:
    to_alice = [m for m in run.stack.sink.received()
                if f"alice@{run.stack.com}" in m.rcpt_tos]
    assert len(to_alice) == 1


def test_audit_redelivery_keeps_metadata(run: Run) -> None:
    assert run.after_redelivery == run.before_redelivery


def test_audit_redelivery_counted_duplicate(
        run: Run) -> None:
    worker = run.stack.workers[-1]
    assert worker.metric("emails_processed_total", domain=run.stack.com,
                         status="duplicate") == 1
