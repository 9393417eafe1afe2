"""deploy/email-worker.service: unit file checks and sd_notify messages."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.ports import free_port
from devstack.provision import LocalAws
from tests.deploy.conftest import DEPLOY, ROOT
from tests.e2e.conftest import WorkerProcess, worker_environment

UNIT = DEPLOY / "email-worker.service"
# SHUTDOWN_TIMEOUT + POLL_WAIT_SECONDS with their defaults.
STOP_BUDGET = 30 + 20


def unit_settings() -> dict[str, list[str]]:
    """Return every Key=value of the unit, keyed by "Section.Key"."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(
            value.strip())
    return settings


def seconds(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*(min|ms|s|m|h)?", value):
        total += int(number) * {"ms": 0.001, "s": 1, "": 1, None: 1,
                                "m": 60, "min": 60, "h": 3600}[unit]
    return total


def test_unit_declares_notify_watchdog_and_stop_budget() -> None:
    settings = unit_settings()
    setting = {key: values[-1] for key, values in settings.items()}
    assert setting["Service.Type"] == "notify"
    assert setting["Service.NotifyAccess"] == "main"
    assert seconds(setting["Service.WatchdogSec"]) >= 10
    assert setting["Service.User"] == "email-worker"
    assert setting["Service.EnvironmentFile"].startswith("/etc/")
    assert setting["Service.ExecStart"].startswith(
        "/opt/email-worker/.venv/bin/python ")
    assert setting["Service.ExecStart"].endswith("main.py")
    assert setting["Service.Restart"] == "on-failure"
    assert seconds(setting["Service.TimeoutStopSec"]) > STOP_BUDGET
    assert setting["Install.WantedBy"] == "multi-user.target"


def test_unit_is_hardened() -> None:
    setting = {key: values[-1] for key, values in unit_settings().items()}
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert setting.get(f"Service.{key}") == value, key


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists, so point it at this
    # checkout's interpreter and main.py; everything else is verified as
    # shipped.
    text = UNIT.read_text()
    text = re.sub(r"(?m)^ExecStart=.*$",
                  f"ExecStart={sys.executable} {ROOT / 'main.py'}", text)
    copy = tmp_path / "email-worker.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True,
        text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings: fail on any line.
    assert output == "", output


# -- sd_notify -----------------------------------------------------------


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # A short path: unix socket paths are limited to 107 bytes.
    folder = tempfile.mkdtemp(prefix="sdn")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def receive_until(sock: socket.socket, wanted: str, got: list[str],
                  timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in got:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {wanted} within {timeout:.0f} s; "
                                 f"received {got}")
        sock.settimeout(remaining)
        try:
            got.extend(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            continue


def test_worker_sends_ready_watchdog_and_stopping(
        moto_url: str, tmp_path: Path,
        notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    aws = LocalAws(moto_url)
    aws.create_tables()
    aws.create_domain("notify.example.com")
    env = worker_environment(
        moto_url, DOMAINS="notify.example.com", SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(free_port()), HEALTH_PORT=str(free_port()),
        METRICS_PORT=str(free_port()), POLL_WAIT_SECONDS="1",
        NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000",
        AWS_EC2_METADATA_DISABLED="true")
    worker = WorkerProcess(env, tmp_path).start()
    got: list[str] = []
    try:
        receive_until(sock, "READY=1", got, timeout=30)
        receive_until(sock, "WATCHDOG=1", got, timeout=10)
        # WATCHDOG_USEC=2 s: a ping at least every second or so.
        watchdogs = got.count("WATCHDOG=1")
        time.sleep(2.5)
        sock.settimeout(0.5)
        while True:
            try:
                got.extend(sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                break
        assert got.count("WATCHDOG=1") >= watchdogs + 2, got
        assert got.index("READY=1") < got.index("WATCHDOG=1")
        worker.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", got, timeout=20)
        assert worker.stop(timeout=30) == 0, worker.stderr_text()
    finally:
        worker.kill()
