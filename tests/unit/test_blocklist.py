"""Recipients whose blocklist matches a sender identity are dropped."""

from __future__ import annotations

import pytest

from email_worker.aws.dynamodb import RecipientRules
from email_worker.pipeline.steps.blocklist import (BlocklistStep,
                                                   find_blocked_identity,
                                                   sender_identities)
from tests.unit.support import make_context, make_services

ALICE = "alice@example.com"
BOB = "bob@example.com"


def run_blocklist(patterns, sender="spam@bad.example",
                  from_header="spam@bad.example",
                  recipients=(ALICE, BOB)):
    body = f"From: {from_header}\r\nTo: {ALICE}\r\n\r\nhi\r\n".encode()
    context = make_context(recipients=list(recipients), sender=sender,
                           body=body,
                           rules=RecipientRules(blocked_patterns=patterns))
    services = make_services()
    BlocklistStep(services).process(context)
    return context, services


def blocked_count(services):
    counter = services.metrics.recipients_blocked.labels(
        domain="example.com")
    return counter._value.get()


def test_exact_pattern_blocks_recipient():
    context, _ = run_blocklist({ALICE: ["spam@bad.example"]})
    assert context.recipients == [BOB]
    assert context.blocked == {ALICE: "spam@bad.example"}


def test_glob_pattern_blocks_recipient():
    context, _ = run_blocklist({ALICE: ["*@bad.example"]})
    assert list(context.blocked) == [ALICE]


def test_no_patterns_keeps_everyone():
    context, services = run_blocklist({})
    assert context.recipients == [ALICE, BOB]
    assert context.blocked == {}
    assert blocked_count(services) == 0


def test_other_sender_not_blocked():
    context, _ = run_blocklist({ALICE: ["spam@bad.example"]},
                               sender="dave@example.net",
                               from_header="dave@example.net")
    assert context.recipients == [ALICE, BOB]


def test_domain_item_blocks_every_recipient():
    context, _ = run_blocklist({"example.com": ["*@bad.example"]})
    assert context.recipients == []
    assert set(context.blocked) == {ALICE, BOB}


def test_domain_item_other_domain_ignored():
    context, _ = run_blocklist({"example.org": ["*@bad.example"]})
    assert context.recipients == [ALICE, BOB]


def test_pattern_case_insensitive():
    context, _ = run_blocklist({ALICE: ["SPAM@Bad.Example"]})
    assert list(context.blocked) == [ALICE]


def test_sender_case_insensitive():
    context, _ = run_blocklist({ALICE: ["spam@bad.example"]},
                               sender="Spam@BAD.example",
                               from_header="Spam@BAD.example")
    assert list(context.blocked) == [ALICE]


def test_from_header_matched_when_envelope_clean():
    context, _ = run_blocklist({ALICE: ["spam@bad.example"]},
                               sender="bounces@list.example.net",
                               from_header="Spammer <spam@bad.example>")
    assert context.blocked == {ALICE: "spam@bad.example"}


def test_any_from_address_matched():
    context, _ = run_blocklist(
        {ALICE: ["spam@bad.example"]}, sender="ok@example.net",
        from_header="ok@example.net, Other <spam@bad.example>")
    assert list(context.blocked) == [ALICE]


def test_envelope_matched_when_from_clean():
    context, _ = run_blocklist({ALICE: ["spam@bad.example"]},
                               sender="spam@bad.example",
                               from_header="Friend <friend@example.net>")
    assert list(context.blocked) == [ALICE]


def test_display_name_not_matched():
    context, _ = run_blocklist(
        {ALICE: ["spam@bad.example"]}, sender="friend@example.net",
        from_header='"spam@bad.example" <friend@example.net>')
    assert context.blocked == {}


def test_null_sender_checks_from_only():
    context, _ = run_blocklist({ALICE: ["*@bad.example"]}, sender="",
                               from_header="MAILER-DAEMON@bad.example")
    assert context.blocked == {ALICE: "mailer-daemon@bad.example"}


@pytest.mark.parametrize("sender", ["x@evil.example.com",
                                    "x@example.com.evil.net"])
def test_domain_glob_not_matching_subdomains(sender):
    context, _ = run_blocklist({ALICE: ["*@example.com"]}, sender=sender,
                               from_header=sender)
    assert context.blocked == {}


def test_domain_glob_matches_domain():
    context, _ = run_blocklist({ALICE: ["*@example.com"]},
                               sender="x@example.com",
                               from_header="x@example.com")
    assert list(context.blocked) == [ALICE]


@pytest.mark.parametrize("identity,blocked", [
    ("spam@a.com", True), ("spam@a.b.com", True), ("SPAM@X.COM", True),
    ("spam@x.com.example.net", False), ("notspam@x.com", False)])
def test_star_in_domain_pattern(identity, blocked):
    found = find_blocked_identity(["spam@*.com"], [identity])
    assert (found is not None) is blocked


def test_metric_counts_blocked_recipients():
    _, services = run_blocklist({"example.com": ["*@bad.example"]})
    assert blocked_count(services) == 2


def test_sender_identities_envelope_first():
    context = make_context(sender="a@example.net",
                           body=b"From: B <b@example.net>, a@example.net"
                                b"\r\n\r\n")
    assert sender_identities(context) == ["a@example.net", "b@example.net"]
