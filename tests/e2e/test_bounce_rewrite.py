"""SES bounce reports come from the failed recipient; other bounces pass.

The bounce-tracking Lambda runs in this process against the same local
AWS endpoint as the worker, so the item the worker reads is the one the
Lambda wrote from an SNS-wrapped bounce notification.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import bounce_lambda.handler as bounce_lambda
from devstack.aws_endpoint import client_environment
from devstack.inject import sns_wrap
from devstack.provision import MESSAGES_TABLE
from tests.e2e.conftest import (CORPUS_DIR, FIXTURES_DIR, Stack,
                                as_stored_by_ses, open_stack, parse_headers,
                                put_rule, split_message, wait_until)

pytestmark = pytest.mark.e2e

US_EAST_ID = "01000199e9cb0eb5-3f16947c-cf25-ec84-d8db-c74254770f58-000000"
EU_WEST_ID = "0102019904dba41e-cccc3fc1-626e-53a1-3043-b026c48bbf33-000000"
US_EAST_SENDER = "MAILER-DAEMON@amazonses.com"
EU_WEST_SENDER = "MAILER-DAEMON@eu-west-1.amazonses.com"
FAILED = "nobody@example.net"


# -- helpers -----------------------------------------------------------


def fixture_bytes(name: str) -> bytes:
    return as_stored_by_ses((FIXTURES_DIR / name).read_bytes())


def us_east_dsn(original_id: str = US_EAST_ID) -> bytes:
    """The us-east-1 DSN, optionally reporting another SES message ID."""
    return fixture_bytes("ses_dsn_us_east_1.eml").replace(
        US_EAST_ID.encode(), original_id.encode())


def fresh_ses_id() -> str:
    """Return an unused ID in SES's outbound format."""
    return f"0100019{uuid.uuid4().hex[:9]}-{uuid.uuid4()}-000000"


def bounce_notification(message_id: str = US_EAST_ID,
                        recipients: list[str] | None = None
                        ) -> dict[str, Any]:
    """The bounce notification fixture, optionally for another message."""
    document = json.loads(
        (FIXTURES_DIR / "ses_bounce_notification.json").read_text())
    document["mail"]["messageId"] = message_id
    if recipients is not None:
        document["bounce"]["bouncedRecipients"] = [
            {"emailAddress": address, "action": "failed",
             "status": "5.1.1"}
            for address in recipients]
    return document


def run_lambda(endpoint_url: str, notification: dict[str, Any]
               ) -> dict[str, int]:
    """Invoke the Lambda handler as SNS would, against ``endpoint_url``."""
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                          "Sns": sns_wrap(notification)}]}
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        for name, value in client_environment(endpoint_url).items():
            patch.setenv(name, value)
        patch.setenv("DYNAMODB_MESSAGES_TABLE", MESSAGES_TABLE)
        patch.setattr(bounce_lambda, "_client", None)
        return bounce_lambda.handler(event, None)


def received_by(stack: Stack, recipient: str) -> list[bytes]:
    return [m.content for m in stack.sink.received()
            if recipient in m.rcpt_tos]


def header(raw: bytes, name: str) -> str:
    return str(parse_headers(raw).get(name, ""))


def fields_except(raw: bytes, *names: str) -> list[bytes]:
    """Return the header fields (folded lines joined), minus ``names``."""
    head = split_message(raw)[0]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line.strip() == b"":
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    skipped = tuple(n.lower().encode() + b":" for n in names)
    return [f for f in fields if not f.lower().startswith(skipped)]


def metric_sum(stack: Stack, name: str, **labels: str) -> float:
    """Sum every sample of ``name`` whose labels include ``labels``."""
    text = stack.workers[-1].metrics_text()
    return sum(sample.value
               for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(
                   sample.labels.get(k) == v for k, v in labels.items()))


# -- SES reports, with and without a tracking item ---------------------


@dataclass
class Bounces:
    stack: Stack
    originals: dict[str, bytes]
    keys: dict[str, str]
    lambda_counts: dict[str, int]
    late_delivered_before_item: int


@pytest.fixture(scope="module")
def bounces(moto_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Bounces]:
    with open_stack(moto_url, tmp_path_factory.mktemp("dsn")) as stack:
        com, net = stack.domains
        late_id, unmatched_id = fresh_ses_id(), fresh_ses_id()
        originals = {
            "tracked": us_east_dsn(),
            "regional": fixture_bytes(
                "ses_dsn_eu_west_1_two_recipients.eml"),
            "late": us_east_dsn(late_id),
            "unmatched": us_east_dsn(unmatched_id),
        }
        recipients = {"tracked": f"alice@{com}", "regional": f"bob@{com}",
                      "late": f"carol@{net}", "unmatched": f"dave@{net}"}
        lambda_counts = run_lambda(stack.aws.endpoint_url,
                                   bounce_notification())
        # The item lists only the second failed recipient of the report.
        run_lambda(stack.aws.endpoint_url, bounce_notification(
            EU_WEST_ID, ["Frank@Example.NET"]))

        keys = {"unmatched": stack.deliver(
            net, originals["unmatched"], "", [recipients["unmatched"]])}
        # Receiving the report six times first makes the worker's receive
        # the seventh, when an untracked report is delivered unchanged.
        for _ in range(6):
            stack.aws.sqs.receive_message(
                QueueUrl=stack.queues[net], VisibilityTimeout=0,
                MaxNumberOfMessages=10)
        for name in ("tracked", "regional", "late"):
            domain = net if name == "late" else com
            keys[name] = stack.deliver(domain, originals[name], "",
                                       [recipients[name]])
        worker = stack.start_worker()

        wait_until(lambda: f"no bounce item for SES message {late_id}"
                   in worker.stderr_text(), 20,
                   "the first attempt at the late report", worker=worker)
        late_before = len(received_by(stack, recipients["late"]))
        run_lambda(stack.aws.endpoint_url, bounce_notification(late_id))

        stack.wait_received(4, timeout=30)
        stack.wait_drained()
        yield Bounces(stack, originals, keys, lambda_counts, late_before)


def delivered(bounces: Bounces, local: str) -> bytes:
    stack = bounces.stack
    domain = stack.net if local in ("carol", "dave") else stack.com
    copies = received_by(stack, f"{local}@{domain}")
    assert len(copies) == 1, f"{local} received {len(copies)} copies"
    return copies[0]


def test_bounce_lambda_stores_one_item(bounces: Bounces) -> None:
    assert bounces.lambda_counts == {"stored": 1, "skipped": 0}


def test_bounce_lambda_item_lists_recipient(bounces: Bounces) -> None:
    item = bounces.stack.aws.dynamodb.get_item(
        TableName=MESSAGES_TABLE, ConsistentRead=True,
        Key={"MessageId": {"S": US_EAST_ID}})["Item"]
    assert item["bouncedRecipients"] == {"SS": [FAILED]}


def test_bounce_from_is_failed_recipient(bounces: Bounces) -> None:
    assert header(delivered(bounces, "alice"), "From") == FAILED


def test_bounce_original_from_kept(bounces: Bounces) -> None:
    raw = delivered(bounces, "alice")
    assert header(raw, "X-Original-From") == US_EAST_SENDER


def test_bounce_body_bytes_unchanged(bounces: Bounces) -> None:
    raw = delivered(bounces, "alice")
    assert split_message(raw)[1] == \
        split_message(bounces.originals["tracked"])[1]


def test_bounce_other_header_fields_unchanged(bounces: Bounces) -> None:
    raw = delivered(bounces, "alice")
    assert fields_except(raw, "From", "X-Original-From") == fields_except(
        bounces.originals["tracked"], "From")


def test_bounce_rewritten_in_metadata(bounces: Bounces) -> None:
    stack = bounces.stack
    metadata = stack.metadata(stack.com, bounces.keys["tracked"])
    assert metadata.get("bounce_rewritten") == "true"


def test_bounce_rewritten_counted(bounces: Bounces) -> None:
    stack = bounces.stack
    worker = stack.workers[-1]
    assert worker.metric("bounces_rewritten_total", domain=stack.com) == 2


def test_bounce_regional_picks_tracked_recipient(bounces: Bounces) -> None:
    address = parseaddr(header(delivered(bounces, "bob"), "From"))[1]
    assert address.lower() == "frank@example.net"


def test_bounce_regional_original_from_kept(bounces: Bounces) -> None:
    raw = delivered(bounces, "bob")
    assert header(raw, "X-Original-From") == EU_WEST_SENDER


def test_bounce_late_item_not_delivered_first(bounces: Bounces) -> None:
    assert bounces.late_delivered_before_item == 0


def test_bounce_late_item_rewritten_on_retry(bounces: Bounces) -> None:
    assert header(delivered(bounces, "carol"), "From") == FAILED


def test_bounce_late_item_counted(bounces: Bounces) -> None:
    stack = bounces.stack
    worker = stack.workers[-1]
    assert worker.metric("bounces_rewritten_total", domain=stack.net) == 1


def test_bounce_untracked_delivered_unchanged(bounces: Bounces) -> None:
    assert delivered(bounces, "dave") == bounces.originals["unmatched"]


def test_bounce_untracked_status_delivered(bounces: Bounces) -> None:
    stack = bounces.stack
    metadata = stack.metadata(stack.net, bounces.keys["unmatched"])
    assert metadata.get("status") == "delivered"


def test_bounce_untracked_not_marked(bounces: Bounces) -> None:
    stack = bounces.stack
    metadata = stack.metadata(stack.net, bounces.keys["unmatched"])
    assert "bounce_rewritten" not in metadata


def test_bounce_untracked_counted(bounces: Bounces) -> None:
    stack = bounces.stack
    worker = stack.workers[-1]
    assert worker.metric("bounces_unmatched_total", domain=stack.net) == 1


# The short path above replaces the minute of retries with earlier receives.
@pytest.mark.skipif(not os.environ.get("E2E_SLOW"),
                    reason="takes about 70 s; set E2E_SLOW=1 to run it")
def test_bounce_untracked_waits_then_delivers(stack: Stack) -> None:
    original = us_east_dsn(fresh_ses_id())
    recipient = f"erin@{stack.com}"
    stack.deliver(stack.com, original, "", [recipient])
    stack.start_worker()
    time.sleep(15)
    assert received_by(stack, recipient) == []
    stack.wait_received(1, timeout=120)
    assert received_by(stack, recipient) == [original]


# -- bounces that SES did not produce ----------------------------------


@pytest.fixture(scope="module")
def corpus_bounces(moto_url: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Stack, dict[str, bytes]]]:
    """Every corpus bounce to a recipient who is out of the office."""
    files = sorted((CORPUS_DIR / "bounces").glob("*.eml"))
    messages = {path.stem.lower(): as_stored_by_ses(path.read_bytes())
                for path in files}
    folder = tmp_path_factory.mktemp("corpus-dsn")
    with open_stack(moto_url, folder) as stack:
        for local, raw in messages.items():
            recipient = f"{local}@{stack.com}"
            put_rule(stack.aws, recipient, ooo_active=True,
                     ooo_message="Away this week.")
            # Bounces are sent with a null envelope sender.
            stack.deliver(stack.com, raw, "", [recipient])
        stack.start_worker()
        stack.wait_received(len(messages), timeout=60)
        stack.wait_drained(timeout=60)
        yield stack, messages


def test_corpus_bounce_bytes_unchanged(
        corpus_bounces: tuple[Stack, dict[str, bytes]]) -> None:
    stack, messages = corpus_bounces
    changed = [local for local, raw in messages.items()
               if received_by(stack, f"{local}@{stack.com}") != [raw]]
    assert changed == []


def test_corpus_bounce_none_counted_rewritten(
        corpus_bounces: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _messages = corpus_bounces
    assert metric_sum(stack, "bounces_rewritten_total") == 0


def test_corpus_bounce_no_reply_sent(
        corpus_bounces: tuple[Stack, dict[str, bytes]]) -> None:
    stack, _messages = corpus_bounces
    # Each delivery keeps the null sender; a reply would name its author.
    replies = [m for m in stack.sink.received() if m.mail_from != "<>"]
    assert replies == []


def test_corpus_bounce_every_reply_suppressed(
        corpus_bounces: tuple[Stack, dict[str, bytes]]) -> None:
    stack, messages = corpus_bounces
    assert metric_sum(stack, "autoreplies_suppressed_total",
                      domain=stack.com) == len(messages)
