"""Out-of-office replies: one per sender, none to automatic mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parseaddr

import pytest

from devstack.inject import ses_received, sns_wrap
from devstack.smtp_sink import ReceivedMail
from tests.e2e.conftest import (FIXTURES_DIR, Stack, as_stored_by_ses,
                                build_message, create_autoreply_table,
                                open_stack, parse_headers, put_rule,
                                wait_until)

pytestmark = pytest.mark.e2e

FRIEND = "friend-envelope@outside.example"
SUBJECT = "Lunch on Friday"
AWAY = "I am away until Monday."

# Case name -> (envelope sender, reason counted for it).
SUPPRESSED = {
    "auto_submitted": ("as@outside.example", "auto_submitted"),
    "precedence_bulk": ("pb@outside.example", "precedence"),
    "list_id": ("li@outside.example", "list"),
    "auto_response_suppress": ("xs@outside.example",
                               "auto_response_suppress"),
    "null_sender": ("", "null_sender"),
    "not_in_to_or_cc": ("nb@outside.example", "not_addressed"),
    "spam_verdict_fail": ("sp@outside.example", "spam"),
}


def replies(stack: Stack) -> list[ReceivedMail]:
    """Messages to addresses outside the served domains."""
    served = tuple("@" + d for d in stack.domains)
    return [m for m in stack.sink.received()
            if not any(r.lower().endswith(served) for r in m.rcpt_tos)]


def replies_to(stack: Stack, sender: str) -> list[ReceivedMail]:
    return [m for m in replies(stack) if sender in m.rcpt_tos]


def queue_suppressed(stack: Stack, recipient: str) -> None:
    com = stack.com
    headers = {
        "auto_submitted": {"Auto_Submitted": "auto-generated"},
        "precedence_bulk": {"Precedence": "bulk"},
        "list_id": {"List_Id": "<team.lists.example>"},
        "auto_response_suppress": {"X_Auto_Response_Suppress": "OOF"},
    }
    for case, (sender, _reason) in SUPPRESSED.items():
        author = sender or "someone@outside.example"
        to = f"other@{com}" if case == "not_in_to_or_cc" else recipient
        raw = build_message(author, to, f"case {case}",
                            **headers.get(case, {}))
        if case != "spam_verdict_fail":
            stack.deliver(com, raw, sender, [recipient])
            continue
        key = stack.put(com, raw)
        document = ses_received(stack.bucket(com), key, sender, [recipient],
                                key)
        document["receipt"]["spamVerdict"] = {"status": "FAIL"}
        stack.send_body(com, json.dumps(sns_wrap(document)))


def do_not_answer(recipient: str) -> bytes:
    """The automatic-reply fixture, addressed to ``recipient``."""
    raw = as_stored_by_ses(
        (FIXTURES_DIR / "auto_reply_do_not_answer.eml").read_bytes())
    return raw.replace(b"<alice@example.com>", f"<{recipient}>".encode())


@dataclass
class Replies:
    stack: Stack
    first: bytes
    reply: ReceivedMail


@pytest.fixture(scope="module")
def away(moto_url: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Replies]:
    with open_stack(moto_url, tmp_path_factory.mktemp("ooo")) as stack:
        com, net = stack.domains
        create_autoreply_table(stack.aws)
        recipient = f"ooo@{com}"
        put_rule(stack.aws, recipient, ooo_active=True, ooo_message=AWAY)
        put_rule(stack.aws, f"alice@{net}", ooo_active=True,
                 ooo_message=AWAY)

        first = build_message("Friend <friend@outside.example>", recipient,
                              SUBJECT)
        stack.deliver(com, first, FRIEND, [recipient])
        queue_suppressed(stack, recipient)
        stack.deliver(net, do_not_answer(f"alice@{net}"),
                      "carol@example.net", [f"alice@{net}"])
        worker = stack.start_worker()
        reply = wait_until(lambda: replies_to(stack, FRIEND), 20,
                           "the first reply", worker=worker)[0]
        second = stack.deliver(com, build_message(
            "Friend <friend@outside.example>", recipient, "Lunch again"),
            FRIEND, [recipient])
        stack.wait_processed(com, second)
        stack.wait_drained()
        yield Replies(stack, first, reply)


def test_autoreply_one_reply_for_two_messages(away: Replies) -> None:
    assert len(replies_to(away.stack, FRIEND)) == 1


def test_autoreply_second_counted_as_recent(away: Replies) -> None:
    stack = away.stack
    assert stack.workers[-1].metric(
        "autoreplies_suppressed_total", domain=stack.com,
        reason="recently_replied") == 1


def test_autoreply_both_messages_delivered(away: Replies) -> None:
    stack = away.stack
    delivered = [m for m in stack.sink.received() if m.mail_from == FRIEND]
    assert len(delivered) == 2


def test_autoreply_envelope_to_sender(away: Replies) -> None:
    assert away.reply.rcpt_tos == (FRIEND,)


def test_autoreply_to_header_envelope_sender(away: Replies) -> None:
    to = parse_headers(away.reply.content)["To"]
    assert parseaddr(str(to))[1] == FRIEND


def test_autoreply_from_is_recipient(away: Replies) -> None:
    sender = parse_headers(away.reply.content)["From"]
    assert parseaddr(str(sender))[1] == f"ooo@{away.stack.com}"


def test_autoreply_subject(away: Replies) -> None:
    assert parse_headers(away.reply.content)["Subject"] == f"Auto: {SUBJECT}"


def test_autoreply_in_reply_to(away: Replies) -> None:
    original = parse_headers(away.first)["Message-ID"]
    assert parse_headers(away.reply.content)["In-Reply-To"] == original


def test_autoreply_references_original(away: Replies) -> None:
    original = str(parse_headers(away.first)["Message-ID"])
    references = str(parse_headers(away.reply.content)["References"])
    assert original in references.split()


def test_autoreply_auto_submitted(away: Replies) -> None:
    value = parse_headers(away.reply.content)["Auto-Submitted"]
    assert value == "auto-replied"


def test_autoreply_carries_message(away: Replies) -> None:
    assert AWAY.encode() in away.reply.content


def test_autoreply_crlf_line_endings(away: Replies) -> None:
    content = away.reply.content
    assert content.count(b"\n") == content.count(b"\r\n")


def test_autoreply_sent_counted(away: Replies) -> None:
    stack = away.stack
    assert stack.workers[-1].metric("autoreplies_sent_total",
                                    domain=stack.com) == 1


def test_autoreply_only_friend_replied(away: Replies) -> None:
    recipients = [m.rcpt_tos for m in replies(away.stack)]
    assert recipients == [(FRIEND,)]


@pytest.mark.parametrize("case", sorted(SUPPRESSED))
def test_autoreply_suppressed_counted(away: Replies, case: str) -> None:
    stack = away.stack
    reason = SUPPRESSED[case][1]
    assert stack.workers[-1].metric(
        "autoreplies_suppressed_total", domain=stack.com,
        reason=reason) == 1


def test_autoreply_fixture_reply_suppressed(away: Replies) -> None:
    stack = away.stack
    assert stack.workers[-1].metric(
        "autoreplies_suppressed_total", domain=stack.net,
        reason="auto_submitted") == 1


def test_autoreply_fixture_message_delivered(away: Replies) -> None:
    stack = away.stack
    delivered = [m.rcpt_tos for m in stack.sink.received()
                 if m.mail_from == "carol@example.net"]
    assert delivered == [(f"alice@{stack.net}",)]


# -- two workers on the same queues -----------------------------------

BUSY = "busy@outside.example"
BURST = 8


@pytest.fixture(scope="module")
def two_workers(moto_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Stack]:
    with open_stack(moto_url, tmp_path_factory.mktemp("ooo2")) as stack:
        create_autoreply_table(stack.aws)
        recipient = f"ooo@{stack.com}"
        put_rule(stack.aws, recipient, ooo_active=True, ooo_message=AWAY)
        # A slow server and one thread each keep both workers busy.
        stack.sink.data_delay = 0.3
        workers = [stack.start_worker(wait=False, WORKER_THREADS="1")
                   for _ in range(2)]
        for worker in workers:
            worker.wait_ready()
        for number in range(BURST):
            stack.deliver(stack.com, build_message(
                BUSY, recipient, f"update {number}"), BUSY, [recipient])
        wait_until(lambda: len([m for m in stack.sink.received()
                                if m.mail_from == BUSY]) >= BURST, 40,
                   f"{BURST} deliveries")
        stack.wait_drained()
        yield stack


def test_autoreply_two_workers_one_reply(two_workers: Stack) -> None:
    assert len(replies_to(two_workers, BUSY)) == 1


def test_autoreply_two_workers_both_delivered(two_workers: Stack) -> None:
    counts = [w.metric("emails_processed_total", domain=two_workers.com,
                       status="delivered") for w in two_workers.workers]
    assert all(count >= 1 for count in counts), counts
