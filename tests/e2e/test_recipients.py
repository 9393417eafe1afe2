"""The envelope comes from the notification, normalised per domain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devstack.inject import ses_received, sns_wrap
from tests.e2e.conftest import Stack, build_message, open_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def done(moto_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with open_stack(moto_url, tmp_path_factory.mktemp("rcpt")) as stack:
        com, net = stack.domains
        mixed_case = "Alice@" + com.replace("example", "Example")
        raw = build_message("Dave <dave@sender.example>",
                            f"zed@{com}, alice@{com}", "mixed recipients")
        key = stack.put(com, raw)
        document = ses_received(
            stack.bucket(com), key, "dave@sender.example",
            [mixed_case, f"alice@{com}", f"bob@{com}", f"carol@{net}"], key)
        # Neither mail.destination nor the headers name the recipients.
        document["mail"]["destination"] = [f"mallory@{com}"]
        stack.send_body(com, json.dumps(sns_wrap(document)))

        bounce = build_message("MAILER-DAEMON@relay.example", f"erin@{net}",
                               "null sender")
        stack.deliver(net, bounce, "", [f"erin@{net}"])
        stack.start_worker()
        stack.wait_received(2)
        stack.wait_drained()
        yield stack


def mail_to(stack: Stack, local: str) -> list[tuple[str, ...]]:
    return [m.rcpt_tos for m in stack.sink.received()
            if any(r.startswith(local + "@") for r in m.rcpt_tos)]


def test_recipients_one_transaction(
        done: Stack) -> None:
    assert len(mail_to(done, "alice")) == 1


def test_recipients_normalised_to_queue_domain(
        done: Stack) -> None:
    com = done.com
    assert mail_to(done, "alice") == [(f"alice@{com}", f"bob@{com}")]


def test_recipients_ignore_destination_and_headers(done: Stack) -> None:
    ignored = mail_to(done, "mallory") + mail_to(done, "zed")
    assert ignored == []


def test_recipients_other_domain_not_delivered(done: Stack) -> None:
    assert mail_to(done, "carol") == []


def test_recipients_null_sender_reverse_path(done: Stack) -> None:
    # The SMTP server records ``MAIL FROM:<>`` as "<>".
    senders = [m.mail_from for m in done.sink.received()
               if m.rcpt_tos == (f"erin@{done.net}",)]
    assert senders == ["<>"]
