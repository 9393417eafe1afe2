"""An aiosmtpd server that keeps every message it receives.

Each message is kept in memory with its envelope and, when a folder is
given, written there as ``NNNNN.eml`` with a ``NNNNN.json`` envelope.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from devstack.ports import free_port

# SES accepts up to 40 MB; aiosmtpd refuses more than 32 MiB by default.
DATA_SIZE_LIMIT = 64 * 1024 * 1024
# aiosmtpd rejects lines over 1001 octets (the RFC 5321 limit).  Postfix
# accepts longer ones, and real mail has them, so the sink accepts them.
LINE_LENGTH_LIMIT = 1024 * 1024


class _LongLineSMTP(SMTP):
    line_length_limit = LINE_LENGTH_LIMIT


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _LongLineSMTP(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    mail_options: tuple[str, ...]


class _Handler:
    def __init__(self, sink: "SmtpSink") -> None:
        self._sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self._sink.reply_for(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any,
                          envelope: Any) -> str:
        self._sink.data_started()
        if self._sink.data_delay > 0:
            # A client that hangs up during the wait cancels this
            # coroutine, so the message is not stored: it never got 250.
            await asyncio.sleep(self._sink.data_delay)
        self._sink.store(ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=bytes(envelope.original_content or envelope.content),
            mail_options=tuple(envelope.mail_options)))
        return "250 Message accepted"


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that records what it receives.

    ``rcpt_replies`` maps a recipient to the reply its RCPT TO gets, for
    example ``"550 5.1.1 no such user"``.  ``data_delay`` delays the reply
    to DATA by that many seconds, like a slow server, and ``data_count``
    counts the DATA commands whose content arrived, accepted or not.
    """

    def __init__(self, port: int | None = None,
                 folder: Path | None = None) -> None:
        self.port = port or free_port()
        self.folder = folder
        self.messages: list[ReceivedMail] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_delay = 0.0
        self.data_count = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> "SmtpSink":
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = _Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port,
            data_size_limit=DATA_SIZE_LIMIT)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reply_for(self, address: str) -> str | None:
        return self.rcpt_replies.get(address.lower())

    def data_started(self) -> None:
        with self._lock:
            self.data_count += 1

    def store(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.messages.append(mail)
            number = len(self.messages)
        if self.folder is not None:
            stem = self.folder / f"{number:05d}"
            stem.with_suffix(".eml").write_bytes(mail.content)
            stem.with_suffix(".json").write_text(json.dumps({
                "mail_from": mail.mail_from,
                "rcpt_tos": list(mail.rcpt_tos)}))

    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.messages)

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
