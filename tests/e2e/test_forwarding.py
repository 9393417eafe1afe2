"""Forwards: served domains on the internal port, others through the relay."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parseaddr

import pytest

from devstack.provision import MESSAGES_TABLE
from devstack.smtp_sink import ReceivedMail, SmtpSink
from tests.e2e.conftest import (FIXTURES_DIR, Stack, as_stored_by_ses,
                                build_message, open_stack, parse_headers,
                                put_rule, split_message, wait_until)

pytestmark = pytest.mark.e2e

ORIGIN = "sender@outside.example"
EXTERNAL_TARGET = "someone@elsewhere.example"
INBOUND_SENDER = "dave@example.net"
DSN_ID = "01000199e9cb0eb5-3f16947c-cf25-ec84-d8db-c74254770f58-000000"
# Case -> (envelope sender, reason counted).  The report has a non-null
# envelope sender here so that only its being a DSN can stop the copy.
SUPPRESSED = {
    "dsn": ("mailer-daemon@amazonses.com", "dsn"),
    "null": ("", "null_sender"),
    "auto": ("robot@outside.example", "auto_submitted"),
}


def to(stack: Stack, recipient: str) -> list[ReceivedMail]:
    return [m for m in stack.sink.received() if recipient in m.rcpt_tos]


def inbound_with_sender() -> bytes:
    """The inbound fixture, with a Sender field added before From."""
    raw = as_stored_by_ses(
        (FIXTURES_DIR / "inbound_message.eml").read_bytes())
    return raw.replace(b"\r\nFrom: ",
                       b"\r\nSender: assistant@example.net\r\nFrom: ", 1)


def ses_dsn(original_id: str) -> bytes:
    raw = as_stored_by_ses(
        (FIXTURES_DIR / "ses_dsn_us_east_1.eml").read_bytes())
    return raw.replace(DSN_ID.encode(), original_id.encode())


def track_bounce(stack: Stack, original_id: str) -> None:
    stack.aws.dynamodb.put_item(TableName=MESSAGES_TABLE, Item={
        "MessageId": {"S": original_id},
        "bouncedRecipients": {"SS": ["nobody@example.net"]}})


@dataclass
class Forwards:
    stack: Stack
    internal: SmtpSink
    originals: dict[str, bytes]


@pytest.fixture(scope="module")
def forwards(moto_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Forwards]:
    internal = SmtpSink().start()
    try:
        with open_stack(moto_url, tmp_path_factory.mktemp("fwd")) as stack:
            com, net = stack.domains
            put_rule(stack.aws, f"fwd-int@{com}", forwards=[f"inbox@{net}"])
            put_rule(stack.aws, f"fwd-ext@{com}", forwards=[EXTERNAL_TARGET])
            for case in SUPPRESSED:
                put_rule(stack.aws, f"fwd-{case}@{com}",
                         forwards=[f"{case}-copy@elsewhere.example"])
            dsn_id = f"0100019{uuid.uuid4().hex[:9]}-{uuid.uuid4()}-000000"
            track_bounce(stack, dsn_id)
            originals = {
                "int": build_message(f"Sender <{ORIGIN}>", f"fwd-int@{com}",
                                     "to a served domain"),
                "ext": inbound_with_sender(),
                "dsn": ses_dsn(dsn_id),
                "null": build_message("someone@outside.example",
                                      f"fwd-null@{com}", "null sender"),
                "auto": build_message("robot@outside.example",
                                      f"fwd-auto@{com}", "automatic",
                                      Auto_Submitted="auto-generated"),
            }
            stack.deliver(com, originals["int"], ORIGIN, [f"fwd-int@{com}"])
            stack.deliver(com, originals["ext"], INBOUND_SENDER,
                          [f"fwd-ext@{com}"])
            for case, (sender, _reason) in SUPPRESSED.items():
                stack.deliver(com, originals[case], sender,
                              [f"fwd-{case}@{com}"])
            stack.start_worker(INTERNAL_SMTP_PORT=str(internal.port))
            # The five recipients' own copies and the external forward.
            stack.wait_received(6)
            wait_until(lambda: internal.received(), 20, "the internal copy")
            stack.wait_drained()
            yield Forwards(stack, internal, originals)
    finally:
        internal.stop()


def internal_copy(forwards: Forwards) -> ReceivedMail:
    copies = forwards.internal.received()
    assert len(copies) == 1, f"{len(copies)} internal copies"
    return copies[0]


def external_copy(forwards: Forwards) -> ReceivedMail:
    copies = to(forwards.stack, EXTERNAL_TARGET)
    assert len(copies) == 1, f"{len(copies)} external copies"
    return copies[0]


# -- to a served domain ------------------------------------------------


def test_forward_internal_goes_to_target(forwards: Forwards) -> None:
    assert internal_copy(forwards).rcpt_tos == (f"inbox@{forwards.stack.net}",)


def test_forward_internal_loop_marker_first(
        forwards: Forwards) -> None:
    first = internal_copy(forwards).content.split(b"\r\n", 1)[0]
    assert first == f"X-Loop: fwd-int@{forwards.stack.com}".encode()


def test_forward_internal_original_bytes_follow(forwards: Forwards) -> None:
    rest = internal_copy(forwards).content.split(b"\r\n", 1)[1]
    assert rest == forwards.originals["int"]


def test_forward_internal_keeps_envelope_sender(forwards: Forwards) -> None:
    assert internal_copy(forwards).mail_from == ORIGIN


def test_forward_internal_not_relayed(forwards: Forwards) -> None:
    assert to(forwards.stack, f"inbox@{forwards.stack.net}") == []


def test_forward_internal_own_copy_delivered(forwards: Forwards) -> None:
    own = [m.content for m in to(forwards.stack,
                                 f"fwd-int@{forwards.stack.com}")]
    assert own == [forwards.originals["int"]]


# -- to another domain -------------------------------------------------


def test_forward_external_from_is_forwarder(forwards: Forwards) -> None:
    sender = parse_headers(external_copy(forwards).content)["From"]
    assert parseaddr(str(sender))[1] == f"fwd-ext@{forwards.stack.com}"


def test_forward_external_display_names_sender(
        forwards: Forwards) -> None:
    sender = parse_headers(external_copy(forwards).content)["From"]
    assert INBOUND_SENDER in parseaddr(str(sender))[0]


def test_forward_external_reply_to_sender(forwards: Forwards) -> None:
    reply_to = parse_headers(external_copy(forwards).content)["Reply-To"]
    assert parseaddr(str(reply_to))[1] == INBOUND_SENDER


@pytest.mark.parametrize("name", ["Return-Path", "Sender",
                                  "DKIM-Signature"])
def test_forward_external_field_removed(forwards: Forwards,
                                        name: str) -> None:
    assert parse_headers(external_copy(forwards).content).get_all(
        name) is None


def test_forward_external_ses_fields_removed(forwards: Forwards) -> None:
    names = parse_headers(external_copy(forwards).content).keys()
    assert [n for n in names if n.lower().startswith("x-ses-")] == []


def test_forward_external_body_bytes_unchanged(forwards: Forwards) -> None:
    body = split_message(external_copy(forwards).content)[1]
    assert body == split_message(forwards.originals["ext"])[1]


def test_forward_external_loop_marker(forwards: Forwards) -> None:
    markers = parse_headers(external_copy(forwards).content).get_all(
        "X-Loop")
    assert markers == [f"fwd-ext@{forwards.stack.com}"]


def test_forward_external_envelope_from_forwarder(
        forwards: Forwards) -> None:
    assert external_copy(forwards).mail_from == \
        f"fwd-ext@{forwards.stack.com}"


def test_forward_external_own_copy_unchanged(forwards: Forwards) -> None:
    own = [m.content for m in to(forwards.stack,
                                 f"fwd-ext@{forwards.stack.com}")]
    assert own == [forwards.originals["ext"]]


def test_forward_sent_counted(forwards: Forwards) -> None:
    stack = forwards.stack
    assert stack.workers[-1].metric("forwards_sent_total",
                                    domain=stack.com) == 2


# -- mail that is not forwarded ----------------------------------------


@pytest.mark.parametrize("case", sorted(SUPPRESSED))
def test_forward_suppressed_no_copy(forwards: Forwards, case: str) -> None:
    assert to(forwards.stack, f"{case}-copy@elsewhere.example") == []


@pytest.mark.parametrize("case", sorted(SUPPRESSED))
def test_forward_suppressed_counted(forwards: Forwards, case: str) -> None:
    stack = forwards.stack
    assert stack.workers[-1].metric(
        "forwards_suppressed_total", domain=stack.com,
        reason=SUPPRESSED[case][1]) == 1


@pytest.mark.parametrize("case", sorted(SUPPRESSED))
def test_forward_suppressed_own_copy_delivered(forwards: Forwards,
                                               case: str) -> None:
    stack = forwards.stack
    assert len(to(stack, f"fwd-{case}@{stack.com}")) == 1


# -- a forwarding loop across two domains ------------------------------

LOOP_ROUNDS = 4


@dataclass
class Loop:
    stack: Stack
    internal: SmtpSink
    rounds: int


@pytest.fixture(scope="module")
def loop(moto_url: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Loop]:
    """a@com forwards to b@net and back; copies are fed in again.

    What the internal port receives is what the other domain's SES
    would receive, so each copy goes back into that domain's queue.
    """
    internal = SmtpSink().start()
    try:
        with open_stack(moto_url, tmp_path_factory.mktemp("loop")) as stack:
            com, net = stack.domains
            put_rule(stack.aws, f"a@{com}", forwards=[f"b@{net}"])
            put_rule(stack.aws, f"b@{net}", forwards=[f"a@{com}"])
            stack.deliver(com, build_message(ORIGIN, f"a@{com}", "loop"),
                          ORIGIN, [f"a@{com}"])
            stack.start_worker(INTERNAL_SMTP_PORT=str(internal.port))
            fed = rounds = 0
            while rounds < LOOP_ROUNDS:
                stack.wait_drained()
                copies = internal.received()[fed:]
                if not copies:
                    break
                rounds += 1
                fed += len(copies)
                for copy in copies:
                    for recipient in copy.rcpt_tos:
                        domain = recipient.rpartition("@")[2]
                        stack.deliver(domain, copy.content, copy.mail_from,
                                      [recipient])
            yield Loop(stack, internal, rounds)
    finally:
        internal.stop()


def test_forward_loop_one_copy_per_address(loop: Loop) -> None:
    counts = Counter(r for m in loop.internal.received() for r in m.rcpt_tos)
    assert [address for address, n in counts.items() if n > 1] == []


def test_forward_loop_reaches_both_addresses(loop: Loop) -> None:
    stack = loop.stack
    reached = sorted(r for m in loop.internal.received() for r in m.rcpt_tos)
    assert reached == [f"a@{stack.com}", f"b@{stack.net}"]


def test_forward_loop_stops(loop: Loop) -> None:
    assert loop.rounds < LOOP_ROUNDS


def test_forward_loop_suppression_counted(loop: Loop) -> None:
    stack = loop.stack
    assert stack.workers[-1].metric("forwards_suppressed_total",
                                    domain=stack.com, reason="loop") == 1
