"""moto in server mode, as a child process on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO

from devstack.ports import free_port, wait_for_port

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class MotoServer:
    """Start ``moto.server`` on 127.0.0.1; stop() is safe to call twice."""

    def __init__(self, port: int | None = None,
                 log: IO[bytes] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> "MotoServer":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
             "-p", str(self.port)],
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
            env={**os.environ, **CREDENTIALS})
        try:
            wait_for_port(self.port, timeout=60)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client_environment(endpoint_url: str) -> dict[str, str]:
    """Return the environment variables that point boto3 at moto."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
