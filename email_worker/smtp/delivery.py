"""Deliver raw message bytes over SMTP with per-recipient outcomes.

Each thread keeps its own connection per server and reuses it across
messages.  An idle connection is checked with NOOP before reuse, and it
is reopened when the server has closed it.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

# A connection idle for longer than this is probed with NOOP before use.
_IDLE_PROBE_SECONDS = 2.0


@dataclass
class DeliveryResult:
    """Outcome per recipient; the values are the server's reply."""

    delivered: list[str] = field(default_factory=list)
    permanent: dict[str, str] = field(default_factory=dict)
    temporary: dict[str, str] = field(default_factory=dict)
    connection_error: str | None = None


def reply_is_permanent(code: int) -> bool:
    """Classify an SMTP reply code: 5xx is permanent, anything else not.

    552 (message too large) is permanent too, as RFC 5321 section 4.5.3.1.10
    recommends treating it, so it falls in the 5xx rule without exception.
    """
    return 500 <= code <= 599


@dataclass
class _Connection:
    client: smtplib.SMTP
    last_used: float


class SmtpSender:
    """Send mail to one SMTP server, one reusable connection per thread."""

    def __init__(self, host: str, port: int, timeout: float,
                 user: str | None = None, password: str | None = None,
                 use_tls: bool = False,
                 on_connect: Callable[[], None] | None = None) -> None:
        self.host = host
        self.port = port
        self._timeout = timeout
        self._user = user
        self._password = password
        self._use_tls = use_tls
        self._on_connect = on_connect
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()
        # Connections inside a transaction: smtplib is not thread-safe,
        # so close_all leaves them to the thread that uses them.
        self._busy: set[smtplib.SMTP] = set()
        self._open_lock = threading.Lock()

    def send(self, sender: str, recipients: list[str],
             body: bytes) -> DeliveryResult:
        """Send ``body`` unchanged to ``recipients`` in one transaction."""
        if not recipients:
            return DeliveryResult()
        reused = getattr(self._local, "connection", None) is not None
        try:
            return self._transaction(sender, recipients, body)
        except smtplib.SMTPServerDisconnected as exc:
            self.close()
            if not reused or isinstance(exc, _DataPhaseError):
                return _unavailable(recipients, exc)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return _unavailable(recipients, exc)
        # A server may close an idle connection between uses.  One retry
        # on a fresh connection separates that case from a server that
        # is down.  Once DATA has begun the server may already have the
        # message, so a failure there is never retried at once.
        try:
            return self._transaction(sender, recipients, body)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return _unavailable(recipients, exc)

    def _transaction(self, sender: str, recipients: list[str],
                     body: bytes) -> DeliveryResult:
        client = self._connection()
        if not client.has_extn("smtputf8"):
            unsendable = _needs_smtputf8(sender, recipients)
            if unsendable:
                sendable = [r for r in recipients if r not in unsendable]
                result = (self._transaction(sender, sendable, body)
                          if sendable else DeliveryResult())
                result.permanent.update(unsendable)
                return result
        options = self._mail_options(client, body, sender, recipients)
        with self._open_lock:
            self._busy.add(client)
        try:
            refused = send_streaming(client, sender, recipients, body,
                                     options)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
            closing = [reply for reply in refused.values()
                       if reply[0] == 421]
            if closing:
                # smtplib has closed the connection after the 421 and
                # sent no DATA, so the recipients it accepted before and
                # those it never reached got nothing: all are retried.
                self.close()
                refused = {r: refused.get(r, closing[0])
                           for r in recipients}
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset()
            return _all_refused(recipients, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPResponseException as exc:
            self.close()
            return _all_refused(recipients, exc.smtp_code, exc.smtp_error)
        finally:
            with self._open_lock:
                self._busy.discard(client)
        self._mark_used()
        return _split(recipients, refused)

    def close(self) -> None:
        """Close this thread's connection; safe to call twice."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            self._quit(connection.client)

    def close_all(self) -> None:
        """Close every idle connection, for shutdown.

        A connection in the middle of a transaction is left alone: a QUIT
        from this thread would interleave with the other thread's
        commands, and the process exit closes it.
        """
        with self._open_lock:
            clients = [c for c in self._open if c not in self._busy]
        for client in clients:
            self._quit(client)

    def _quit(self, client: smtplib.SMTP) -> None:
        with self._open_lock:
            self._open.discard(client)
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def _connection(self) -> smtplib.SMTP:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._usable(connection):
            return connection.client
        self.close()
        client = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        try:
            client.ehlo()
            if self._use_tls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if self._user:
                client.login(self._user, self._password or "")
        except BaseException:
            client.close()
            raise
        if self._on_connect:
            self._on_connect()
        with self._open_lock:
            self._open.add(client)
        self._local.connection = _Connection(client, time.monotonic())
        return client

    def _usable(self, connection: _Connection) -> bool:
        if time.monotonic() - connection.last_used < _IDLE_PROBE_SECONDS:
            return True
        try:
            return connection.client.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _mark_used(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.last_used = time.monotonic()

    def _reset(self) -> None:
        # smtplib does not send RSET when DATA itself is refused, so the
        # connection is reset here before it is reused.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            return
        try:
            connection.client.rset()
            connection.last_used = time.monotonic()
        except (smtplib.SMTPException, OSError):
            self.close()

    @staticmethod
    def _mail_options(client: smtplib.SMTP, body: bytes, sender: str,
                      recipients: list[str]) -> list[str]:
        options = []
        if not body.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        envelope_ascii = sender.isascii() and all(
            r.isascii() for r in recipients)
        if not envelope_ascii and client.has_extn("smtputf8"):
            options.append("SMTPUTF8")
        return options


def _split(recipients: list[str],
           refused: dict[str, tuple[int, bytes]]) -> DeliveryResult:
    result = DeliveryResult()
    for recipient in recipients:
        if recipient not in refused:
            result.delivered.append(recipient)
            continue
        code, text = refused[recipient]
        reply = _reply(code, text)
        if reply_is_permanent(code):
            result.permanent[recipient] = reply
        else:
            result.temporary[recipient] = reply
    return result


# The message is sent in pieces of about this size, each cut after a line
# break, so that dot-stuffing never copies the whole message at once.
_CHUNK_BYTES = 1 << 20
# A dot at a line start is doubled (RFC 5321 section 4.5.2).  A dot after
# a bare CR is doubled too, so that a server which ends lines at a bare
# CR cannot read <CR>.<CR><LF> in the body as the end of DATA.
_LEADING_DOT = re.compile(rb"(?m)(?:^|(?<=\r))\.")


class _DataPhaseError(smtplib.SMTPServerDisconnected):
    """Raised when the connection fails after DATA began.

    The server may then have the message already, so delivery is unknown.
    """


def send_streaming(client: smtplib.SMTP, sender: str, recipients: list[str],
                   body: bytes, options: list[str]
                   ) -> dict[str, tuple[int, bytes]]:
    """Run one SMTP transaction like smtplib's sendmail, streaming DATA.

    sendmail builds two or three full copies of the message while
    dot-stuffing it, which for 40 MB of mail costs over 100 MB.  This
    sends the same commands and raises the same exceptions, but
    dot-stuffs and sends the body a piece at a time.  Returns the refused
    recipients with their replies.
    """
    client.ehlo_or_helo_if_needed()
    mail_options = list(options)
    if client.does_esmtp and client.has_extn("size"):
        mail_options.insert(0, f"size={len(body)}")
    code, reply = client.mail(sender, mail_options)
    if code != 250:
        if code == 421:
            client.close()
        else:
            client.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            client.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        client.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = _send_data(client, body)
    if code != 250:
        if code == 421:
            client.close()
        else:
            client.rset()
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _send_data(client: smtplib.SMTP, body: bytes) -> tuple[int, bytes]:
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    try:
        return _send_body(client, body)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _DataPhaseError(str(exc)) from exc


def _send_body(client: smtplib.SMTP, body: bytes) -> tuple[int, bytes]:
    view = memoryview(body)
    start = 0
    while start < len(body):
        end = body.find(b"\n", min(start + _CHUNK_BYTES, len(body)) - 1)
        end = len(body) if end < 0 else end + 1
        # Every piece starts at a line start, so ^ matches as it would on
        # the whole message.
        client.send(_LEADING_DOT.sub(b"..", view[start:end]))
        start = end
    if not body.endswith(b"\r\n"):
        client.send(b"\r\n")
    client.send(b".\r\n")
    return client.getreply()


def _needs_smtputf8(sender: str, recipients: list[str]) -> dict[str, str]:
    """Return the recipients that cannot be sent without SMTPUTF8.

    A non-ASCII sender makes every recipient unsendable (RFC 6531
    section 3.2); otherwise only non-ASCII recipients are.
    """
    reply = "553 5.6.7 the server does not offer SMTPUTF8"
    if not sender.isascii():
        return {r: reply for r in recipients}
    return {r: reply for r in recipients if not r.isascii()}


def _unavailable(recipients: list[str], exc: Exception) -> DeliveryResult:
    reason = f"{type(exc).__name__}: {exc}"
    return DeliveryResult(temporary={r: reason for r in recipients},
                          connection_error=reason)


def _all_refused(recipients: list[str], code: int,
                 text: bytes | str) -> DeliveryResult:
    return _split(recipients, {r: (code, text) for r in recipients})


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()
