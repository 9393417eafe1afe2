"""The bounce rewrite, out-of-office and forward steps on one message
context, with stub clients and, where noted, a real SMTP server."""

from __future__ import annotations

import email
from decimal import Decimal
from email import policy
from pathlib import Path
from typing import Any

import pytest

from devstack.smtp_sink import SmtpSink
from email_worker.aws.dynamodb import RecipientRules
from email_worker.errors import BounceNotTrackedError
from email_worker.mail.headers import header_block_end, parse_headers
from email_worker.mail.notification import Notification
from email_worker.metrics.registry import WorkerMetrics
from email_worker.pipeline.services import Services
from email_worker.pipeline.steps.autoreply import AutoReplyStep
from email_worker.pipeline.steps.bounce import BounceRewriteStep
from email_worker.pipeline.steps.forward import ForwardStep
from email_worker.smtp.delivery import DeliveryResult, SmtpSender
from tests.conftest import shared_dir
from tests.unit.support import make_context, make_settings, shared_file

ALICE = "alice@example.com"
BOB = "bob@example.com"
DAVE = "dave@example.net"
OUTSIDE = "erin@example.org"
DOMAIN = "example.com"
FIXTURE_ID = "01000199e9cb0eb5-3f16947c-cf25-ec84-d8db-c74254770f58-000000"
EU_WEST_ID = "0102019904dba41e-cccc3fc1-626e-53a1-3043-b026c48bbf33-000000"
OOO = {"ooo_active": True, "ooo_message": "Away until Monday."}


# -- stubs ----------------------------------------------------------------


class RecordingSmtp:
    """Stand-in for SmtpSender that records sends and returns an outcome."""

    def __init__(self, outcome: str = "delivered",
                 reply: str = "250 OK") -> None:
        self.outcome = outcome
        self.reply = reply
        self.sent: list[tuple[str, list[str], bytes]] = []

    def send(self, sender: str, recipients: list[str],
             body: bytes) -> DeliveryResult:
        self.sent.append((sender, list(recipients), body))
        if self.outcome == "delivered":
            return DeliveryResult(delivered=list(recipients))
        if self.outcome == "temporary":
            return DeliveryResult(
                temporary={r: self.reply for r in recipients})
        return DeliveryResult(permanent={r: self.reply for r in recipients})


class StubBounces:
    """Stand-in for BounceStore with items keyed by SES message ID."""

    def __init__(self, items: dict[str, dict[str, Any]] | None = None,
                 available: bool = True):
        self.items = items or {}
        self.looked_up: list[str] = []
        self.available = available

    def find(self, message_id: str) -> dict[str, Any] | None:
        self.looked_up.append(message_id)
        return self.items.get(message_id)


class StubReplyLog:
    """Stand-in for ReplyLog where each pair wins once unless ``grant``
    is False."""

    def __init__(self, grant: bool = True) -> None:
        self.grant = grant
        self.claims: list[tuple[str, str, float]] = []

    def claim(self, recipient: str, sender: str, period: float) -> bool:
        earlier = [c for c in self.claims if c[:2] == (recipient, sender)]
        self.claims.append((recipient, sender, period))
        return self.grant and not earlier


def services(smtp: Any = None, internal: Any = None, bounces: Any = None,
             reply_log: Any = None) -> Services:
    return Services(settings=make_settings(domains=(DOMAIN,)), store=None,
                    rules=None, smtp=smtp or RecordingSmtp(),
                    metrics=WorkerMetrics(),
                    internal_smtp=internal or RecordingSmtp(),
                    bounces=bounces or StubBounces(),
                    reply_log=reply_log or StubReplyLog())


def context_for(raw: bytes, sender: str = DAVE,
                recipients: list[str] | None = None,
                rules: dict[str, dict[str, Any]] | None = None,
                verdicts: dict[str, str] | None = None):
    context = make_context(recipients=recipients or [ALICE], sender=sender,
                           body=raw, rules=RecipientRules(rules=rules or {}))
    if verdicts is not None:
        context.notification = Notification(
            kind="ses", bucket=context.bucket, key="k", sender=sender,
            recipients=tuple(context.recipients), verdicts=verdicts)
    return context


def fixture(name: str) -> bytes:
    return shared_file("fixtures", name).read_bytes()


def counter(metric: Any, **labels: str) -> float:
    return metric.labels(**labels)._value.get()


def body_of(raw: bytes) -> bytes:
    return raw[header_block_end(raw):]


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def with_hops(raw: bytes, count: int) -> bytes:
    """Return ``raw`` with ``count`` Received fields in total."""
    present = parse_headers(raw).get_all("Received", [])
    extra = b"".join(b"Received: from relay%d by next\r\n" % n
                     for n in range(count - len(present)))
    return extra + raw


def bounce_corpus() -> list[object]:
    folder = shared_dir() / "corpus" / "bounces"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    if not files:
        missing = pytest.mark.skip(
            reason=f"bounce corpus not found under {folder}")
        return [pytest.param(None, marks=missing)]
    return [pytest.param(path, id=path.name) for path in files]


# -- bounce rewrite -------------------------------------------------------


def rewrite(raw: bytes, items: dict[str, dict[str, Any]],
            receive_count: int = 1):
    bounces = StubBounces(items)
    deps = services(bounces=bounces)
    context = context_for(raw, sender="")
    context.receive_count = receive_count
    BounceRewriteStep(deps).process(context)
    return context, bounces, deps


def tracked(*recipients: str) -> dict[str, Any]:
    return {"MessageId": FIXTURE_ID, "bouncedRecipients": set(recipients)}


def test_bounce_rewrite_from_is_failed_recipient():
    context, _, _ = rewrite(fixture("ses_dsn_us_east_1.eml"),
                            {FIXTURE_ID: tracked("nobody@example.net")})
    assert parsed(context.body)["From"] == "nobody@example.net"


def test_bounce_rewrite_keeps_original_from():
    context, _, _ = rewrite(fixture("ses_dsn_us_east_1.eml"),
                            {FIXTURE_ID: tracked("nobody@example.net")})
    assert parsed(context.body)["X-Original-From"] == \
        "MAILER-DAEMON@amazonses.com"


def test_bounce_rewrite_body_bytes_identical():
    raw = fixture("ses_dsn_us_east_1.eml")
    context, _, _ = rewrite(raw, {FIXTURE_ID: tracked("nobody@example.net")})
    assert body_of(context.body) == body_of(raw)


def test_bounce_rewrite_changes_only_from_line():
    raw = fixture("ses_dsn_us_east_1.eml")
    context, _, _ = rewrite(raw, {FIXTURE_ID: tracked("nobody@example.net")})
    assert context.body == raw.replace(
        b"From: MAILER-DAEMON@amazonses.com\r\n",
        b"From: nobody@example.net\r\n"
        b"X-Original-From: MAILER-DAEMON@amazonses.com\r\n", 1)


def test_bounce_rewrite_single_from_field():
    context, _, _ = rewrite(fixture("ses_dsn_us_east_1.eml"),
                            {FIXTURE_ID: tracked("nobody@example.net")})
    assert len(parse_headers(context.body).get_all("From")) == 1


def test_bounce_rewrite_looks_up_inner_id():
    _, bounces, _ = rewrite(fixture("ses_dsn_us_east_1.eml"),
                            {FIXTURE_ID: tracked("nobody@example.net")})
    assert bounces.looked_up == [FIXTURE_ID]


def test_bounce_rewrite_marks_dsn_and_audit():
    context, _, deps = rewrite(fixture("ses_dsn_us_east_1.eml"),
                               {FIXTURE_ID: tracked("nobody@example.net")})
    assert context.is_dsn is True
    assert context.audit["bounce_rewritten"] == "true"
    assert counter(deps.metrics.bounces_rewritten, domain=DOMAIN) == 1


def test_bounce_rewrite_first_failed_recipient_listed():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml")
    context, _, _ = rewrite(raw, {EU_WEST_ID: tracked("frank@example.net")})
    assert parsed(context.body)["From"] == "frank@example.net"


def test_bounce_rewrite_both_listed_takes_first():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml")
    item = tracked("frank@example.net", "old.address@example.net")
    context, _, _ = rewrite(raw, {EU_WEST_ID: item})
    assert parsed(context.body)["From"] == "old.address@example.net"


def test_bounce_rewrite_item_lists_mixed_case():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml")
    item = {"bouncedRecipients": ["Frank@Example.NET"]}
    context, _, _ = rewrite(raw, {EU_WEST_ID: item})
    assert parsed(context.body)["From"] == "frank@example.net"


def test_bounce_rewrite_item_lists_neither_takes_first():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml")
    context, _, _ = rewrite(raw, {EU_WEST_ID: tracked("x@example.net")})
    assert parsed(context.body)["From"] == "old.address@example.net"


def test_bounce_rewrite_regional_body_identical():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml")
    context, _, _ = rewrite(raw, {EU_WEST_ID: tracked("frank@example.net")})
    assert body_of(context.body) == body_of(raw)
    assert parsed(context.body)["X-Original-From"] == \
        "MAILER-DAEMON@eu-west-1.amazonses.com"


def test_bounce_rewrite_keeps_report_structure():
    context, _, _ = rewrite(fixture("ses_dsn_us_east_1.eml"),
                            {FIXTURE_ID: tracked("nobody@example.net")})
    headers = parse_headers(context.body)
    assert headers.get_content_type() == "multipart/report"
    assert headers["Return-Path"] == "<>"


def test_bounce_rewrite_delayed_recipient_skipped():
    raw = fixture("ses_dsn_eu_west_1_two_recipients.eml").replace(
        b"Action: failed\r\nFinal-Recipient: rfc822; old.address",
        b"Action: delayed\r\nFinal-Recipient: rfc822; old.address")
    item = tracked("frank@example.net", "old.address@example.net")
    context, _, _ = rewrite(raw, {EU_WEST_ID: item})
    assert parsed(context.body)["From"] == "frank@example.net"


def test_bounce_rewrite_only_delayed_unchanged():
    raw = fixture("ses_dsn_us_east_1.eml").replace(b"Action: failed",
                                                   b"Action: delayed")
    context, bounces, _ = rewrite(
        raw, {FIXTURE_ID: tracked("nobody@example.net")})
    assert context.body == raw
    assert context.is_dsn is True
    assert bounces.looked_up == []


def test_bounce_rewrite_headers_only_part():
    raw = fixture("ses_dsn_us_east_1.eml").replace(
        b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
    context, _, _ = rewrite(raw, {FIXTURE_ID: tracked("nobody@example.net")})
    assert parsed(context.body)["From"] == "nobody@example.net"
    assert body_of(context.body) == body_of(raw)


def test_bounce_rewrite_missing_item_retries():
    raw = fixture("ses_dsn_us_east_1.eml")
    with pytest.raises(BounceNotTrackedError) as raised:
        rewrite(raw, {})
    assert raised.value.retry_after >= 5


def test_bounce_rewrite_without_table_delivers_at_once():
    raw = fixture("ses_dsn_us_east_1.eml")
    deps = services(bounces=StubBounces({}, available=False))
    context = context_for(raw, sender="")
    BounceRewriteStep(deps).process(context)
    assert context.body == raw


def test_bounce_rewrite_gives_up_after_minute():
    raw = fixture("ses_dsn_us_east_1.eml")
    waited = 0
    for receive_count in range(1, 30):
        try:
            context, _, deps = rewrite(raw, {}, receive_count)
        except BounceNotTrackedError as exc:
            waited += exc.retry_after
            continue
        break
    assert 45 <= waited <= 120
    assert context.body == raw
    assert counter(deps.metrics.bounces_unmatched, domain=DOMAIN) == 1


def test_bounce_rewrite_unmatched_not_counted_rewritten():
    context, _, deps = rewrite(fixture("ses_dsn_us_east_1.eml"), {},
                               receive_count=100)
    assert context.is_dsn is True
    assert "bounce_rewritten" not in context.audit
    assert counter(deps.metrics.bounces_rewritten, domain=DOMAIN) == 0


def test_bounce_rewrite_missing_item_leaves_body():
    raw = fixture("ses_dsn_us_east_1.eml")
    deps = services()
    context = context_for(raw, sender="")
    with pytest.raises(BounceNotTrackedError):
        BounceRewriteStep(deps).process(context)
    assert context.body == raw


def test_bounce_rewrite_ignores_other_mail():
    raw = fixture("inbound_message.eml")
    context, bounces, _ = rewrite(raw, {})
    assert context.body == raw
    assert context.is_dsn is False
    assert bounces.looked_up == []


def test_bounce_rewrite_non_ses_inner_id_unchanged():
    raw = fixture("ses_dsn_us_east_1.eml").replace(
        f"<{FIXTURE_ID}@email.amazonses.com>".encode(),
        b"<c0ffee42@mail.example.com>")
    context, bounces, _ = rewrite(raw, {})
    assert context.body == raw
    assert bounces.looked_up == []


@pytest.mark.parametrize("path", bounce_corpus())
def test_bounce_rewrite_corpus_untouched(path: Path):
    raw = path.read_bytes()
    context, bounces, _ = rewrite(raw, {})
    assert context.is_dsn is False
    assert context.body == raw
    assert bounces.looked_up == []


# -- out-of-office --------------------------------------------------------


def run_autoreply(raw: bytes, sender: str = DAVE,
                  rules: dict[str, dict[str, Any]] | None = None,
                  smtp: Any = None, reply_log: Any = None,
                  verdicts: dict[str, str] | None = None,
                  is_dsn: bool = False):
    deps = services(smtp=smtp or RecordingSmtp(),
                    reply_log=reply_log or StubReplyLog())
    context = context_for(raw, sender=sender,
                          rules=rules if rules is not None else {ALICE: OOO},
                          verdicts=verdicts)
    context.is_dsn = is_dsn
    AutoReplyStep(deps).process(context)
    return context, deps


def suppressed(deps: Services, reason: str) -> float:
    return counter(deps.metrics.autoreplies_suppressed, domain=DOMAIN,
                   reason=reason)


def test_autoreply_sent_to_envelope_sender():
    _, deps = run_autoreply(fixture("inbound_message.eml"))
    sender, recipients, _ = deps.smtp.sent[0]
    assert sender == ALICE
    assert recipients == [DAVE]


def test_autoreply_headers():
    _, deps = run_autoreply(fixture("inbound_message.eml"))
    reply = parsed(deps.smtp.sent[0][2])
    assert reply["From"] == ALICE
    assert reply["To"] == DAVE
    assert reply["Subject"] == "Auto: Q1 numbers"
    assert reply["Auto-Submitted"] == "auto-replied"


def test_autoreply_counted():
    _, deps = run_autoreply(fixture("inbound_message.eml"))
    assert counter(deps.metrics.autoreplies_sent, domain=DOMAIN) == 1


def test_autoreply_only_once_per_pair():
    raw = fixture("inbound_message.eml")
    smtp = RecordingSmtp()
    reply_log = StubReplyLog()
    run_autoreply(raw, smtp=smtp, reply_log=reply_log)
    _, deps = run_autoreply(raw, smtp=smtp, reply_log=reply_log)
    assert len(smtp.sent) == 1
    assert suppressed(deps, "recently_replied") == 1


def test_autoreply_inactive_rule_sends_nothing():
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            rules={ALICE: {**OOO, "ooo_active": False}})
    assert deps.smtp.sent == []


def test_autoreply_non_string_message_sends_nothing():
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            rules={ALICE: {**OOO, "ooo_message": 5}})
    assert deps.smtp.sent == []


def test_autoreply_string_flag_false_sends_nothing():
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            rules={ALICE: {**OOO, "ooo_active": "false"}})
    assert deps.smtp.sent == []


def test_autoreply_no_rule_sends_nothing():
    _, deps = run_autoreply(fixture("inbound_message.eml"), rules={})
    assert deps.smtp.sent == []
    assert deps.reply_log.claims == []


def test_autoreply_dsn_suppressed():
    _, deps = run_autoreply(fixture("inbound_message.eml"), is_dsn=True)
    assert deps.smtp.sent == []
    assert deps.reply_log.claims == []
    assert suppressed(deps, "dsn") == 1


def test_autoreply_rewritten_dsn_suppressed():
    raw = fixture("ses_dsn_us_east_1.eml")
    bounce_context, _, _ = rewrite(
        raw, {FIXTURE_ID: tracked("nobody@example.net")})
    smtp = RecordingSmtp()
    deps = services(smtp=smtp)
    context = context_for(bounce_context.body, sender="nobody@example.net",
                          rules={ALICE: OOO})
    context.is_dsn = bounce_context.is_dsn
    AutoReplyStep(deps).process(context)
    assert smtp.sent == []


def test_autoreply_fixture_auto_reply_suppressed():
    _, deps = run_autoreply(fixture("auto_reply_do_not_answer.eml"),
                            sender="carol@example.net")
    assert deps.smtp.sent == []
    assert deps.reply_log.claims == []
    assert suppressed(deps, "auto_submitted") == 1


def test_autoreply_null_sender_suppressed():
    _, deps = run_autoreply(fixture("inbound_message.eml"), sender="")
    assert deps.smtp.sent == []
    assert suppressed(deps, "null_sender") == 1


def test_autoreply_spam_verdict_from_notification():
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            verdicts={"spam": "FAIL", "virus": "PASS"})
    assert deps.smtp.sent == []
    assert suppressed(deps, "spam") == 1


def test_autoreply_virus_verdict_from_headers():
    raw = fixture("inbound_message.eml").replace(
        b"X-SES-Virus-Verdict: PASS", b"X-SES-Virus-Verdict: FAIL")
    _, deps = run_autoreply(raw)
    assert deps.smtp.sent == []
    assert suppressed(deps, "virus") == 1


def test_autoreply_notification_verdicts_win_over_headers():
    raw = fixture("inbound_message.eml").replace(
        b"X-SES-Spam-Verdict: PASS", b"X-SES-Spam-Verdict: FAIL")
    _, deps = run_autoreply(raw, verdicts={"spam": "PASS",
                                           "virus": "PASS"})
    assert len(deps.smtp.sent) == 1


def test_autoreply_bcc_recipient_suppressed():
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            rules={BOB: OOO})
    assert deps.smtp.sent == []


@pytest.mark.parametrize("days, seconds", [
    (None, 7 * 86_400),
    (3, 3 * 86_400),
    (Decimal("2"), 2 * 86_400),
    (0, 86_400),
    ("not a number", 7 * 86_400),
])
def test_autoreply_period_from_rule(days, seconds):
    rule = dict(OOO)
    if days is not None:
        rule["ooo_days"] = days
    _, deps = run_autoreply(fixture("inbound_message.eml"),
                            rules={ALICE: rule})
    assert deps.reply_log.claims == [(ALICE, DAVE, seconds)]


def test_autoreply_send_failure_does_not_raise():
    smtp = RecordingSmtp("temporary", "421 try later")
    context, deps = run_autoreply(fixture("inbound_message.eml"), smtp=smtp)
    assert counter(deps.metrics.smtp_errors, domain=DOMAIN,
                   kind="autoreply") == 1
    assert counter(deps.metrics.autoreplies_sent, domain=DOMAIN) == 0
    assert context.deferred == {}


def test_autoreply_skips_recipient_already_delivered():
    deps = services()
    context = context_for(fixture("inbound_message.eml"),
                          rules={ALICE: OOO})
    context.already_delivered = [ALICE]
    AutoReplyStep(deps).process(context)
    assert deps.smtp.sent == []


@pytest.mark.parametrize("path", bounce_corpus())
def test_autoreply_corpus_bounce_gets_no_reply(path: Path):
    raw = path.read_bytes()
    headers = parse_headers(raw)
    to = email.utils.getaddresses(headers.get_all("To", []))
    recipient = to[0][1].lower() if to else ALICE
    deps = services()
    context = context_for(raw, sender="", recipients=[recipient],
                          rules={recipient: OOO})
    BounceRewriteStep(deps).process(context)
    AutoReplyStep(deps).process(context)
    assert deps.smtp.sent == []


def test_autoreply_over_smtp_arrives_with_crlf():
    with SmtpSink() as sink:
        sender = SmtpSender("127.0.0.1", sink.port, timeout=10)
        try:
            run_autoreply(fixture("inbound_message.eml"), smtp=sender)
        finally:
            sender.close()
        received = sink.received()
    assert len(received) == 1
    assert received[0].mail_from == ALICE
    assert received[0].rcpt_tos == (DAVE,)
    content = received[0].content
    assert content.count(b"\n") == content.count(b"\r\n")
    assert parsed(content)["In-Reply-To"] == \
        "<20250314094105.5f2a@mail.example.net>"


# -- forward --------------------------------------------------------------


def run_forward(raw: bytes, targets: Any, sender: str = DAVE,
                smtp: Any = None, internal: Any = None,
                is_dsn: bool = False, already: list[str] | None = None):
    deps = services(smtp=smtp or RecordingSmtp(),
                    internal=internal or RecordingSmtp())
    context = context_for(raw, sender=sender,
                          rules={ALICE: {"forwards": targets}})
    context.is_dsn = is_dsn
    context.already_forwarded = list(already or [])
    ForwardStep(deps).process(context)
    return context, deps


def forward_suppressed(deps: Services, reason: str) -> float:
    return counter(deps.metrics.forwards_suppressed, domain=DOMAIN,
                   reason=reason)


def test_forward_external_goes_through_relay():
    _, deps = run_forward(fixture("inbound_message.eml"), [OUTSIDE])
    assert [(s, r) for s, r, _ in deps.smtp.sent] == [(ALICE, [OUTSIDE])]
    assert deps.internal_smtp.sent == []


def test_forward_external_copy_rewritten():
    raw = fixture("inbound_message.eml")
    _, deps = run_forward(raw, [OUTSIDE])
    copy = deps.smtp.sent[0][2]
    message = parsed(copy)
    assert message["From"].addresses[0].addr_spec == ALICE
    assert "dave@example.net" in message["From"].addresses[0].display_name
    assert message["X-Loop"] == ALICE
    assert message["DKIM-Signature"] is None
    assert message["Return-Path"] is None
    assert body_of(copy) == body_of(raw)


def test_forward_internal_goes_to_internal_port():
    raw = fixture("inbound_message.eml")
    _, deps = run_forward(raw, [BOB])
    assert deps.smtp.sent == []
    assert deps.internal_smtp.sent == [
        (DAVE, [BOB], b"X-Loop: alice@example.com\r\n" + raw)]


def test_forward_recorded_and_delivery_continues():
    context, deps = run_forward(fixture("inbound_message.eml"),
                                [OUTSIDE, BOB])
    assert context.forwarded == [f"{ALICE}>{OUTSIDE}", f"{ALICE}>{BOB}"]
    assert context.recipients == [ALICE]
    assert counter(deps.metrics.forwards_sent, domain=DOMAIN) == 2


def test_forward_targets_normalised_once():
    _, deps = run_forward(fixture("inbound_message.eml"),
                          {"Erin@Example.ORG", " erin@example.org "})
    assert [r for _, r, _ in deps.smtp.sent] == [[OUTSIDE]]


def test_forward_single_string_target():
    _, deps = run_forward(fixture("inbound_message.eml"), OUTSIDE)
    assert len(deps.smtp.sent) == 1


def test_forward_to_self_skipped():
    _, deps = run_forward(fixture("inbound_message.eml"), [ALICE])
    assert deps.internal_smtp.sent == []
    assert deps.smtp.sent == []


def test_forward_already_sent_skipped():
    _, deps = run_forward(fixture("inbound_message.eml"), [OUTSIDE, BOB],
                          already=[f"{ALICE}>{OUTSIDE}"])
    assert deps.smtp.sent == []
    assert len(deps.internal_smtp.sent) == 1


def test_forward_dsn_suppressed():
    _, deps = run_forward(fixture("ses_dsn_us_east_1.eml"), [OUTSIDE],
                          sender="", is_dsn=True)
    assert deps.smtp.sent == []
    assert forward_suppressed(deps, "dsn") == 1


def test_forward_null_sender_suppressed():
    _, deps = run_forward(fixture("inbound_message.eml"), [OUTSIDE],
                          sender="")
    assert deps.smtp.sent == []
    assert forward_suppressed(deps, "null_sender") == 1


def test_forward_auto_submitted_suppressed():
    _, deps = run_forward(fixture("auto_reply_do_not_answer.eml"),
                          [OUTSIDE], sender="carol@example.net")
    assert deps.smtp.sent == []
    assert forward_suppressed(deps, "auto_submitted") == 1


def test_forward_own_loop_marker_suppressed():
    raw = b"X-Loop: alice@example.com\r\n" + fixture("inbound_message.eml")
    _, deps = run_forward(raw, [OUTSIDE, BOB])
    assert deps.smtp.sent == []
    assert deps.internal_smtp.sent == []
    assert forward_suppressed(deps, "loop") == 1


def test_forward_other_loop_marker_forwarded():
    raw = b"X-Loop: carol@example.com\r\n" + fixture("inbound_message.eml")
    _, deps = run_forward(raw, [OUTSIDE])
    assert len(deps.smtp.sent) == 1


def test_forward_copy_not_forwarded_again():
    raw = fixture("inbound_message.eml")
    _, first = run_forward(raw, [BOB])
    copy = first.internal_smtp.sent[0][2]
    _, second = run_forward(copy, [BOB])
    assert second.internal_smtp.sent == []


def test_forward_hop_limit_reached():
    raw = with_hops(fixture("inbound_message.eml"), 31)
    _, deps = run_forward(raw, [OUTSIDE])
    assert deps.smtp.sent == []
    assert forward_suppressed(deps, "hop_limit") == 1


def test_forward_at_hop_limit_still_sent():
    raw = with_hops(fixture("inbound_message.eml"), 30)
    _, deps = run_forward(raw, [OUTSIDE])
    assert len(deps.smtp.sent) == 1


def test_forward_temporary_failure_defers():
    smtp = RecordingSmtp("temporary", "451 try later")
    context, _ = run_forward(fixture("inbound_message.eml"), [OUTSIDE],
                             smtp=smtp)
    assert context.deferred == {f"forward:{ALICE}>{OUTSIDE}":
                                "451 try later"}
    assert context.forwarded == []


def test_forward_permanent_failure_not_deferred():
    smtp = RecordingSmtp("permanent", "554 rejected")
    context, deps = run_forward(fixture("inbound_message.eml"), [OUTSIDE],
                                smtp=smtp)
    assert context.deferred == {}
    assert context.forwarded == []
    assert forward_suppressed(deps, "rejected") == 1


def test_forward_no_rule_sends_nothing():
    deps = services()
    context = context_for(fixture("inbound_message.eml"))
    ForwardStep(deps).process(context)
    assert deps.smtp.sent == []
    assert deps.internal_smtp.sent == []


def test_forward_over_smtp_both_routes():
    raw = fixture("inbound_message.eml")
    with SmtpSink() as relay, SmtpSink() as internal:
        relay_sender = SmtpSender("127.0.0.1", relay.port, timeout=10)
        internal_sender = SmtpSender("127.0.0.1", internal.port,
                                     timeout=10)
        try:
            context, _ = run_forward(raw, [OUTSIDE, BOB], smtp=relay_sender,
                                     internal=internal_sender)
        finally:
            relay_sender.close()
            internal_sender.close()
        outside, inside = relay.received(), internal.received()
    assert len(context.forwarded) == 2
    assert outside[0].rcpt_tos == (OUTSIDE,)
    assert body_of(outside[0].content) == body_of(raw)
    assert parsed(outside[0].content)["X-Loop"] == ALICE
    assert inside[0].rcpt_tos == (BOB,)
    assert inside[0].content == b"X-Loop: alice@example.com\r\n" + raw
