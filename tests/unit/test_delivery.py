"""Delivery against a real SMTP server on 127.0.0.1.

Each test starts its own aiosmtpd server on a free loopback port, so the
replies, the received bytes and the connection handling are real.
"""

from __future__ import annotations

import pytest

from devstack.ports import free_port
from devstack.smtp_sink import SmtpSink
from email_worker.smtp import delivery
from email_worker.smtp.delivery import SmtpSender, reply_is_permanent

SENDER = "dave@example.net"
BODY = (b"From: Dave <dave@example.net>\r\nTo: alice@example.com\r\n"
        b"Subject: numbers\r\n\r\nline one\r\n.leading dot\r\nend\r\n")


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def connections():
    return []


@pytest.fixture
def sender(sink, connections):
    smtp = SmtpSender("127.0.0.1", sink.port, timeout=5,
                      on_connect=lambda: connections.append(1))
    yield smtp
    smtp.close()


def test_send_all_delivered(sender):
    result = sender.send(SENDER, ["alice@example.com", "bob@example.com"],
                         BODY)
    assert result.delivered == ["alice@example.com", "bob@example.com"]
    assert result.permanent == {}
    assert result.temporary == {}


def test_send_bytes_unchanged(sender, sink):
    sender.send(SENDER, ["alice@example.com"], BODY)
    assert sink.received()[0].content == BODY


def test_send_dot_lines_arrive_unchanged(sender, sink):
    body = b"Subject: dots\r\n\r\n.\r\n..two\r\n.x\r\nend\r\n"
    sender.send(SENDER, ["alice@example.com"], body)
    assert sink.received()[0].content == body


def test_send_large_body_in_pieces(sender, sink, monkeypatch):
    # Small pieces put dot lines on both sides of piece boundaries.
    monkeypatch.setattr(delivery, "_CHUNK_BYTES", 5)
    body = b"Subject: x\r\n\r\n" + b".a\r\nbb\r\n..c\r\n" * 50
    sender.send(SENDER, ["alice@example.com"], body)
    assert sink.received()[0].content == body


def test_dot_after_bare_cr_doubled():
    # A server ending lines at a bare CR must not see <CR>.<CR><LF> as
    # the end of DATA.
    assert delivery._LEADING_DOT.sub(b"..", b"a\r.\r\n") == b"a\r..\r\n"


def test_send_envelope(sender, sink):
    sender.send(SENDER, ["alice@example.com", "bob@example.com"], BODY)
    mail = sink.received()[0]
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ("alice@example.com", "bob@example.com")


def test_send_one_transaction(sender, sink):
    sender.send(SENDER, ["alice@example.com", "bob@example.com"], BODY)
    assert len(sink.received()) == 1


def test_send_null_sender(sender, sink):
    result = sender.send("", ["alice@example.com"], BODY)
    assert result.delivered == ["alice@example.com"]
    assert sink.received()[0].mail_from == "<>"


def test_send_no_recipients_makes_no_connection(sender, sink, connections):
    result = sender.send(SENDER, [], BODY)
    assert result.delivered == []
    assert connections == []
    assert sink.received() == []


def test_send_5xx_permanent(sender, sink):
    sink.rcpt_replies["bob@example.com"] = "550 5.1.1 unknown"
    result = sender.send(SENDER, ["alice@example.com", "bob@example.com"],
                         BODY)
    assert result.delivered == ["alice@example.com"]
    assert result.permanent == {"bob@example.com": "550 5.1.1 unknown"}
    assert result.temporary == {}


def test_send_4xx_temporary(sender, sink):
    sink.rcpt_replies["bob@example.com"] = "450 4.2.0 try later"
    result = sender.send(SENDER, ["alice@example.com", "bob@example.com"],
                         BODY)
    assert result.delivered == ["alice@example.com"]
    assert result.temporary == {"bob@example.com": "450 4.2.0 try later"}
    assert result.permanent == {}


def test_send_refused_recipient_not_in_envelope(sender, sink):
    sink.rcpt_replies["bob@example.com"] = "550 5.1.1 unknown"
    sender.send(SENDER, ["alice@example.com", "bob@example.com"], BODY)
    assert sink.received()[0].rcpt_tos == ("alice@example.com",)


def test_send_mixed_replies(sender, sink):
    sink.rcpt_replies["bob@example.com"] = "550 5.1.1 unknown"
    sink.rcpt_replies["carol@example.com"] = "450 4.2.0 try later"
    result = sender.send(SENDER, ["alice@example.com", "bob@example.com",
                                  "carol@example.com"], BODY)
    assert result.delivered == ["alice@example.com"]
    assert list(result.permanent) == ["bob@example.com"]
    assert list(result.temporary) == ["carol@example.com"]
    assert result.connection_error is None


def test_send_all_refused_split_per_recipient(sender, sink):
    sink.rcpt_replies["alice@example.com"] = "550 5.1.1 unknown"
    sink.rcpt_replies["bob@example.com"] = "452 4.2.2 mailbox full"
    result = sender.send(SENDER, ["alice@example.com", "bob@example.com"],
                         BODY)
    assert result.delivered == []
    assert list(result.permanent) == ["alice@example.com"]
    assert list(result.temporary) == ["bob@example.com"]
    assert sink.received() == []


def test_send_after_all_refused_reuses_connection(sender, sink,
                                                   connections):
    sink.rcpt_replies["bob@example.com"] = "550 5.1.1 unknown"
    sender.send(SENDER, ["bob@example.com"], BODY)
    result = sender.send(SENDER, ["alice@example.com"], BODY)
    assert result.delivered == ["alice@example.com"]
    assert len(connections) == 1


def test_send_reuses_connection(sender, sink, connections):
    first = sender.send(SENDER, ["alice@example.com"], BODY)
    second = sender.send(SENDER, ["bob@example.com"], BODY)
    assert first.delivered == ["alice@example.com"]
    assert second.delivered == ["bob@example.com"]
    assert len(connections) == 1
    assert len(sink.received()) == 2


def test_send_reconnects_after_close(sender, connections):
    sender.send(SENDER, ["alice@example.com"], BODY)
    sender.close()
    result = sender.send(SENDER, ["bob@example.com"], BODY)
    assert result.delivered == ["bob@example.com"]
    assert len(connections) == 2


def test_send_reconnects_after_server_restart(sink, connections,
                                              monkeypatch):
    # Probe the idle connection on every send instead of after 2 s.
    monkeypatch.setattr(delivery, "_IDLE_PROBE_SECONDS", 0.0)
    smtp = SmtpSender("127.0.0.1", sink.port, timeout=5,
                      on_connect=lambda: connections.append(1))
    try:
        smtp.send(SENDER, ["alice@example.com"], BODY)
        sink.stop()
        sink.start()
        result = smtp.send(SENDER, ["bob@example.com"], BODY)
    finally:
        smtp.close()
    assert result.delivered == ["bob@example.com"]
    assert len(connections) == 2


def test_close_twice_is_safe(sender):
    sender.send(SENDER, ["alice@example.com"], BODY)
    sender.close()
    sender.close()


def test_eight_bit_body_declared(sender, sink):
    body = BODY.replace(b"numbers", "Zahlen für Q1".encode())
    result = sender.send(SENDER, ["alice@example.com"], body)
    assert result.delivered == ["alice@example.com"]
    assert "BODY=8BITMIME" in sink.received()[0].mail_options


def test_ascii_body_not_declared_eight_bit(sender, sink):
    sender.send(SENDER, ["alice@example.com"], BODY)
    assert "BODY=8BITMIME" not in sink.received()[0].mail_options


def test_closed_port_all_temporary():
    smtp = SmtpSender("127.0.0.1", free_port(), timeout=2)
    result = smtp.send(SENDER, ["alice@example.com", "bob@example.com"],
                       BODY)
    assert result.delivered == []
    assert set(result.temporary) == {"alice@example.com", "bob@example.com"}
    assert result.permanent == {}


def test_closed_port_sets_connection_error():
    smtp = SmtpSender("127.0.0.1", free_port(), timeout=2)
    result = smtp.send(SENDER, ["alice@example.com"], BODY)
    assert result.connection_error is not None
    assert "ConnectionRefusedError" in result.connection_error


@pytest.mark.parametrize("code,permanent", [
    (250, False), (421, False), (450, False), (499, False),
    (500, True), (550, True), (552, True), (554, True)])
def test_reply_is_permanent(code, permanent):
    assert reply_is_permanent(code) is permanent
