"""Readiness and watchdog notifications for systemd (sd_notify).

Implements the datagram protocol of sd_notify(3) with the standard
library.  Outside systemd NOTIFY_SOCKET is unset and every call does
nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Send READY, WATCHDOG and STOPPING messages to NOTIFY_SOCKET."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ if environ is None else environ)
        self._address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval = (int(watchdog_usec) / 2_000_000
                                  if watchdog_usec.isdigit() else None)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self) -> None:
        self._send("READY=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            # Logged once: the watchdog would repeat it every second.
            if not self._failed:
                log.warning("systemd notification %s failed, further "
                            "failures are not logged: %s", message, exc)
            self._failed = True


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        # An abstract socket: the leading @ stands for a NUL byte.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None
