"""Property-based input: arbitrary SQS bodies and arbitrary MIME bytes.

hypothesis generates the input, and each example goes through the real
worker.  Whatever arrives, no polling thread dies, /health stays 200,
the queue drains (bad bodies are given up after MAX_RECEIVE_COUNT) and a
well-formed message sent last is still delivered.  MIME messages named
by a valid notification are delivered byte for byte or parked as failed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.inject import ses_message_id, ses_received, sns_wrap
from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (SENDER, Recorder, health_ok, log_lines,
                                   recipient_counts, send_simple,
                                   start_worker)

pytestmark = pytest.mark.e2e

BODY_EXAMPLES = 80
MIME_EXAMPLES = 60
SETTINGS = settings(deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

# Characters SQS accepts in a message body.
_SQS_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",),
                          exclude_characters="".join(
                              chr(c) for c in range(32) if c not in
                              (9, 10, 13)))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(_SQS_TEXT,
                                                        max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(_SQS_TEXT, max_size=10), inner, max_size=4),
    max_leaves=12)
_KEYS = ["notificationType", "mail", "receipt", "action", "objectKey",
         "bucketName", "recipients", "source", "Records", "s3", "Type",
         "Message", "Event", "eventName"]


def mutated_notification(domain: str, bucket: str) -> st.SearchStrategy[Any]:
    """An SES notification with one field replaced or removed."""
    @st.composite
    def build(draw: Any) -> Any:
        key = ses_message_id()
        document = ses_received(bucket, key, SENDER, [f"x@{domain}"], key)
        path = draw(st.sampled_from([
            ("notificationType",), ("mail",), ("mail", "source"),
            ("receipt",), ("receipt", "recipients"), ("receipt", "action"),
            ("receipt", "action", "bucketName"),
            ("receipt", "action", "objectKey")]))
        target = document
        for name in path[:-1]:
            target = target[name]
        if draw(st.booleans()):
            del target[path[-1]]
        else:
            target[path[-1]] = draw(_JSON)
        if draw(st.booleans()):
            document = sns_wrap(document)
        return document
    return build()


def sqs_bodies(domain: str, bucket: str) -> st.SearchStrategy[str]:
    shaped = st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=5)
    return st.one_of(
        st.text(_SQS_TEXT, min_size=1, max_size=300),
        _JSON.map(json.dumps),
        shaped.map(json.dumps),
        shaped.map(lambda d: json.dumps(
            {"Type": "Notification", "Message": json.dumps(d)})),
        mutated_notification(domain, bucket).map(json.dumps),
    ).filter(lambda body: body.strip() != "")


_LINE = st.binary(max_size=120).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_HEADER_NAMES = st.sampled_from([
    "From", "To", "Cc", "Subject", "Content-Type", "MIME-Version",
    "Content-Transfer-Encoding", "Return-Path", "Auto-Submitted",
    "Precedence", "X-Spam", "Message-ID", "Reply-To", "Date"])


@st.composite
def mime_messages(draw: Any) -> bytes:
    """CRLF-terminated lines: headers, a blank line or not, and a body
    that may be multipart with a matching or broken boundary."""
    lines = [name.encode() + b": " + draw(_LINE) for name in
             draw(st.lists(_HEADER_NAMES, max_size=8))]
    lines += draw(st.lists(_LINE, max_size=3))
    if draw(st.booleans()):
        boundary = draw(st.text("abc=_'()", min_size=1, max_size=10))
        lines.append(b'Content-Type: multipart/mixed; boundary="'
                     + boundary.encode() + b'"')
        lines.append(b"")
        for _ in range(draw(st.integers(0, 3))):
            lines.append(b"--" + boundary.encode())
            lines += draw(st.lists(_LINE, max_size=4))
        if draw(st.booleans()):
            lines.append(b"--" + boundary.encode() + b"--")
    elif draw(st.booleans()):
        lines.append(b"")
    lines += draw(st.lists(st.one_of(_LINE, st.just(b"."),
                                     st.just(b".."), st.just(b"")),
                           max_size=20))
    return b"\r\n".join(lines) + b"\r\n"


def test_fuzzed_sqs_bodies(stack: Stack, reliability: Recorder) -> None:
    com = stack.com
    worker = start_worker(stack, MAX_RECEIVE_COUNT="2")
    bodies: list[str] = []

    @settings(SETTINGS, max_examples=BODY_EXAMPLES)
    @given(body=sqs_bodies(com, stack.bucket(com)))
    def send(body: str) -> None:
        stack.send_body(com, body)
        bodies.append(body)
    send()

    stack.wait_drained(timeout=180)
    healthy_after_fuzz = health_ok(worker)
    key = send_simple(stack, com, "final")
    metadata = stack.wait_processed(com, key, timeout=60)
    unexpected = log_lines(worker, "unexpected error")
    given_up = log_lines(worker, "giving up after")
    reliability.record(
        f"fuzzed SQS bodies ({len(bodies)} examples)",
        "no thread death, /health 200, queue drains, final message "
        "delivered",
        messages=len(bodies) + 1,
        lost=0 if recipient_counts(stack)[f"final@{com}"] else 1,
        duplicated=max(0, recipient_counts(stack)[f"final@{com}"] - 1),
        parked=len(given_up), unexpected_errors=len(unexpected))

    assert len(bodies) >= BODY_EXAMPLES // 2
    assert healthy_after_fuzz
    assert health_ok(worker)
    assert metadata["status"] == "delivered"
    assert unexpected == []


def test_fuzzed_mime_messages(stack: Stack, reliability: Recorder) -> None:
    com = stack.com
    worker = start_worker(stack, MAX_RECEIVE_COUNT="2")
    sent: dict[str, tuple[str, bytes]] = {}

    @settings(SETTINGS, max_examples=MIME_EXAMPLES)
    @given(raw=mime_messages())
    def send(raw: bytes) -> None:
        recipient = f"f{len(sent)}@{com}"
        key = stack.deliver(com, raw, SENDER, [recipient])
        sent[recipient] = (key, raw)
    send()

    stack.wait_drained(timeout=180)
    final = send_simple(stack, com, "final")
    final_metadata = stack.wait_processed(com, final, timeout=60)
    counts = recipient_counts(stack)
    contents = {r: m.content for m in stack.sink.received()
                for r in m.rcpt_tos}
    statuses = {r: stack.metadata(com, key).get("status")
                for r, (key, _raw) in sent.items()}
    parked = [r for r, s in statuses.items() if s == "failed"]
    lost = [r for r in sent if counts[r] == 0 and r not in parked]
    altered = [r for r, (_key, raw) in sent.items()
               if r in contents and contents[r] != raw]
    unexpected = log_lines(worker, "unexpected error")
    reliability.record(
        f"fuzzed MIME messages ({len(sent)} examples)",
        "each delivered once byte for byte or marked failed; /health 200",
        messages=len(sent) + 1, lost=len(lost),
        duplicated=sum(n - 1 for n in counts.values() if n > 1),
        parked=len(parked), altered=len(altered),
        unexpected_errors=len(unexpected))

    assert lost == []
    assert [r for r, n in counts.items() if n > 1] == []
    assert altered == []
    assert health_ok(worker)
    assert final_metadata["status"] == "delivered"
    assert unexpected == []
