"""A 40 MB message, the largest SES accepts, goes through byte for byte.

The worker's peak resident memory (VmHWM) is reported next to its RSS
when idle, because the bytes are held in memory on the way through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import SENDER, Recorder, start_worker

pytestmark = pytest.mark.e2e

SIZE = 40 * 1024 * 1024


def build_large(recipient: str) -> bytes:
    head = (f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: large\r\n"
            "Message-ID: <large@faults.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode()
    # Lines that need dot-stuffing and 8-bit bytes, repeated.
    block = b"".join([b".leading dot\r\n", "caf\u00e9 ".encode() * 15
                      + b"\r\n", b"x" * 998 + b"\r\n", b".\r\n"])
    body = block * ((SIZE - len(head)) // len(block) + 1)
    return head + body[:SIZE - len(head) - 2] + b"\r\n"


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0])
    return values


def test_40_mb_message_byte_for_byte(stack: Stack,
                                     reliability: Recorder) -> None:
    com = stack.com
    recipient = f"large@{com}"
    raw = build_large(recipient)
    assert len(raw) == SIZE
    worker = start_worker(stack, SMTP_TIMEOUT="120")
    assert worker.process is not None
    idle = memory_kib(worker.process.pid)

    key = stack.deliver(com, raw, SENDER, [recipient])
    metadata = stack.wait_processed(com, key, timeout=240)
    stack.wait_drained(timeout=60)
    peak = memory_kib(worker.process.pid)["VmHWM"]
    received = stack.sink.received()
    identical = len(received) == 1 and received[0].content == raw
    reliability.record(
        "40 MB message",
        "delivered once, byte for byte",
        messages=1, lost=0 if received else 1,
        duplicated=max(0, len(received) - 1), parked=0,
        identical=identical, idle_rss_mib=round(idle["VmRSS"] / 1024),
        peak_rss_mib=round(peak / 1024),
        peak_over_message=round((peak - idle["VmRSS"]) * 1024 / SIZE, 1))

    assert metadata["status"] == "delivered"
    assert len(received) == 1
    assert received[0].rcpt_tos == (recipient,)
    assert identical
