"""Fixtures that run ``python3 main.py`` against local AWS and SMTP servers.

Each pytest process starts one moto server for the session.  Every test
gets its own pair of domains (``<label>.example.com`` and
``<label>.example.net``), so queues, buckets and blocklist items of
different tests never meet.  Tests observe the worker only from outside:
the SMTP server, S3, SQS, the HTTP endpoints, the exit status and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.aws_endpoint import MotoServer, client_environment
from tests.conftest import shared_dir
from devstack.inject import ses_received, ses_message_id, sns_wrap
from devstack.ports import free_port, wait_for_port
from devstack.provision import RULES_TABLE, LocalAws, bucket_name
from devstack.smtp_sink import SmtpSink

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
# E2E_WORKER_MAIN runs another checkout of the worker with these tests.
MAIN = Path(os.environ.get("E2E_WORKER_MAIN", ROOT / "main.py"))
# Sample mail and SQS bodies; see shared_dir() for where they are found.
DATA_DIR = shared_dir()
CORPUS_DIR = DATA_DIR / "corpus"
FIXTURES_DIR = DATA_DIR / "fixtures"

WORKER_START_TIMEOUT = 30.0
DEFAULT_WAIT = 20.0
# Environment variables passed through to the worker; everything else,
# in particular any AWS_* or worker setting of the caller, is left out.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


# -- waiting ---------------------------------------------------------


def wait_until(condition: Callable[[], T], timeout: float = DEFAULT_WAIT,
               description: str = "", interval: float = 0.1,
               worker: "WorkerProcess | None" = None) -> T:
    """Poll ``condition`` until it returns a truthy value and return it.

    Raises AssertionError after ``timeout`` seconds, or as soon as
    ``worker`` has exited, so that a crash does not look like slowness.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if worker is not None and worker.returncode is not None:
            raise AssertionError(
                f"worker exited with status {worker.returncode} while "
                f"waiting for {description or condition!r}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for "
                f"{description or condition!r}")
        time.sleep(interval)


# -- the worker process ----------------------------------------------


def worker_environment(endpoint_url: str, **settings: str) -> dict[str, str]:
    """Return a clean environment for main.py with loopback endpoints only."""
    env = {name: os.environ[name] for name in _PASSED_THROUGH
           if name in os.environ}
    env.update(client_environment(endpoint_url))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


class WorkerProcess:
    """``python3 main.py`` with stdout and stderr kept in files."""

    def __init__(self, env: dict[str, str], folder: Path,
                 name: str = "worker") -> None:
        self.env = env
        self.folder = folder
        self.stderr_path = folder / f"{name}.stderr"
        self.stdout_path = folder / f"{name}.stdout"
        self.process: subprocess.Popen[bytes] | None = None
        self.signalled_at: float | None = None
        self.stopped_after: float | None = None

    @property
    def health_port(self) -> int:
        return int(self.env["HEALTH_PORT"])

    @property
    def metrics_port(self) -> int:
        return int(self.env["METRICS_PORT"])

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> "WorkerProcess":
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "wb") as err, \
                open(self.stdout_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(MAIN)], env=self.env, cwd=self.folder,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        return self

    def run_to_exit(self, timeout: float = 30.0) -> int:
        """Start the worker and wait for its exit, for start-up errors."""
        self.start()
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"worker still running after {timeout:.0f} s") from None

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        def ready() -> bool:
            try:
                wait_for_port(self.health_port, timeout=0.2)
                wait_for_port(self.metrics_port, timeout=0.2)
            except TimeoutError:
                return False
            return True
        wait_until(ready, timeout, "the worker's HTTP ports", worker=self)

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM,
             timeout: float = 45.0) -> int:
        """Send ``signum`` unless already sent, wait for the exit and
        remember how long it took from the first signal."""
        assert self.process is not None
        if self.process.poll() is None:
            if self.signalled_at is None:
                self.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"worker did not exit within {timeout:.0f} s of "
                    f"{signal.Signals(signum).name}") from None
            assert self.signalled_at is not None
            self.stopped_after = time.monotonic() - self.signalled_at
        return int(self.process.returncode)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- HTTP ---------------------------------------------------------

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, body = self.get(self.health_port, path)
        return status, json.loads(body)

    def metrics_text(self) -> str:
        status, body = self.get(self.metrics_port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Return the value of one sample on /metrics, or 0 when absent."""
        return sample_value(self.metrics_text(), name, labels)


def sample_value(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def metric_names(text: str) -> set[str]:
    """Return the exposed metric names, counters also with ``_total``."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


# -- the stack of servers one test uses ------------------------------


@dataclass
class Stack:
    """Local AWS, an SMTP server and two domains, plus worker helpers."""

    aws: LocalAws
    sink: SmtpSink
    domains: tuple[str, str]
    folder: Path
    queues: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)
    worker_name: str = ""

    @property
    def com(self) -> str:
        return self.domains[0]

    @property
    def net(self) -> str:
        return self.domains[1]

    def provision(self, dead_letter_queue: bool = False) -> None:
        for domain in self.domains:
            self.queues[domain] = self.aws.create_domain(
                domain, dead_letter_queue=dead_letter_queue)

    def bucket(self, domain: str) -> str:
        return bucket_name(domain)

    # -- worker -------------------------------------------------------

    def settings(self, **overrides: str) -> dict[str, str]:
        settings = {
            "DOMAINS": ",".join(self.domains),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.sink.port),
            "HEALTH_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),
            "POLL_WAIT_SECONDS": "1",
            "RETRY_DELAY_SECONDS": "1",
            "WORKER_NAME": self.worker_name,
            "SMTP_TIMEOUT": "10",
            "LOG_LEVEL": "INFO",
        }
        settings.update(overrides)
        return settings

    def start_worker(self, wait: bool = True,
                     **overrides: str) -> WorkerProcess:
        env = worker_environment(self.aws.endpoint_url,
                                 **self.settings(**overrides))
        worker = WorkerProcess(env, self.folder,
                               name=f"worker{len(self.workers) + 1}")
        self.workers.append(worker)
        worker.start()
        if wait:
            worker.wait_ready()
        return worker

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.stop(timeout=15)
            except AssertionError:
                pass
            finally:
                worker.kill()
        self.sink.stop()

    def worker_logs(self) -> Iterator[tuple[str, str]]:
        for worker in self.workers:
            yield str(worker.stderr_path), worker.stderr_text()

    # -- mail in ------------------------------------------------------

    def put(self, domain: str, raw: bytes, key: str | None = None,
            **extra: Any) -> str:
        key = key or ses_message_id()
        self.aws.s3.put_object(Bucket=self.bucket(domain), Key=key,
                               Body=raw, **extra)
        return key

    def notify(self, domain: str, key: str, sender: str,
               recipients: Iterable[str], wrap: bool = True,
               bucket: str | None = None) -> dict[str, Any]:
        document = ses_received(bucket or self.bucket(domain), key, sender,
                                recipients, key)
        body = sns_wrap(document) if wrap else document
        self.send_body(domain, json.dumps(body))
        return body

    def send_body(self, domain: str, body: str) -> None:
        self.aws.sqs.send_message(QueueUrl=self.queues[domain],
                                  MessageBody=body)

    def deliver(self, domain: str, raw: bytes, sender: str,
                recipients: Iterable[str], wrap: bool = True,
                key: str | None = None) -> str:
        """Store ``raw`` and queue its SES notification; return the key."""
        key = self.put(domain, raw, key)
        self.notify(domain, key, sender, recipients, wrap=wrap)
        return key

    # -- observations -------------------------------------------------

    def depth(self, domain: str) -> int:
        return self.aws.queue_depth(self.queues[domain])

    def drained(self) -> bool:
        return all(self.depth(d) == 0 for d in self.domains)

    def wait_drained(self, timeout: float = DEFAULT_WAIT) -> None:
        wait_until(self.drained, timeout, "both queues to be empty",
                   interval=0.25, worker=self._running_worker())

    def wait_received(self, count: int,
                      timeout: float = DEFAULT_WAIT) -> None:
        wait_until(lambda: len(self.sink.received()) >= count, timeout,
                   f"{count} message(s) at the SMTP server",
                   worker=self._running_worker())

    def metadata(self, domain: str, key: str) -> dict[str, str]:
        head = self.aws.s3.head_object(Bucket=self.bucket(domain), Key=key)
        return dict(head["Metadata"])

    def wait_processed(self, domain: str, key: str,
                       timeout: float = DEFAULT_WAIT) -> dict[str, str]:
        def processed() -> dict[str, str] | None:
            try:
                metadata = self.metadata(domain, key)
            except self.aws.s3.exceptions.ClientError:
                return None
            return metadata if metadata.get("processed") == "true" else None
        return wait_until(processed, timeout, f"processed=true on {key}",
                          worker=self._running_worker())

    def object_exists(self, domain: str, key: str) -> bool:
        try:
            self.aws.s3.head_object(Bucket=self.bucket(domain), Key=key)
        except self.aws.s3.exceptions.ClientError:
            return False
        return True

    def queued_bodies(self, domain: str) -> list[str]:
        """Receive every visible message.  Call it only when no worker runs."""
        bodies: list[str] = []
        while True:
            response = self.aws.sqs.receive_message(
                QueueUrl=self.queues[domain], MaxNumberOfMessages=10,
                VisibilityTimeout=60, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            bodies += [m["Body"] for m in messages]

    def _running_worker(self) -> WorkerProcess | None:
        running = [w for w in self.workers if w.process is not None]
        return running[-1] if running else None


def unique_label() -> str:
    return "t" + uuid.uuid4().hex[:10]


def as_stored_by_ses(raw: bytes) -> bytes:
    """Return ``raw`` with CRLF line endings.

    SES receives mail over SMTP, where every line ends in CRLF, and
    stores those bytes; files on disk often use bare LF instead.
    """
    return re.sub(rb"\r?\n", b"\r\n", raw)


def build_message(sender: str, to: str, subject: str,
                  body: str = "Hello.", **headers: str) -> bytes:
    """Build a small CRLF message.  Extra headers: ``Name_With_Dashes=v``."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             f"Message-ID: <{uuid.uuid4().hex}@e2e.example>",
             "Date: Thu, 04 Dec 2025 15:00:00 +0000", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=us-ascii"]
    lines += [f"{name.replace('_', '-')}: {value}"
              for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


AUTOREPLY_TABLE = "email-autoreply-log"


def create_autoreply_table(aws: LocalAws) -> None:
    """Create the out-of-office reply log unless it exists already."""
    try:
        aws.dynamodb.create_table(
            TableName=AUTOREPLY_TABLE,
            KeySchema=[{"AttributeName": "reply_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "reply_key",
                                   "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
    except aws.dynamodb.exceptions.ResourceInUseException:
        pass


def put_rule(aws: LocalAws, address: str, **attributes: Any) -> None:
    """Store an email-rules item; values are bool, int, str or a list."""
    item: dict[str, Any] = {"email_address": {"S": address.lower()}}
    for name, value in attributes.items():
        if isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, int):
            item[name] = {"N": str(value)}
        elif isinstance(value, list):
            item[name] = {"L": [{"S": str(v)} for v in value]}
        else:
            item[name] = {"S": str(value)}
    aws.dynamodb.put_item(TableName=RULES_TABLE, Item=item)


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Return the header block (with its empty line) and the rest."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b""
    return raw[:match.end()], raw[match.end():]


def parse_headers(raw: bytes) -> Message:
    """Parse only the header block of ``raw``."""
    return BytesHeaderParser(policy=compat32).parsebytes(
        split_message(raw)[0])


def make_stack(aws: LocalAws, domains: tuple[str, str],
               folder: Path) -> Stack:
    stack = Stack(aws=aws, sink=SmtpSink().start(), domains=domains,
                  folder=folder, worker_name=f"e2e-{unique_label()}")
    return stack


# -- fixtures ---------------------------------------------------------


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        server = MotoServer(log=log).start()
        try:
            LocalAws(server.url).create_tables()
            yield server.url
        finally:
            server.stop()


@contextlib.contextmanager
def open_stack(moto_url: str, folder: Path) -> Iterator[Stack]:
    """Yield two fresh domains on the shared moto server, with SMTP."""
    label = unique_label()
    result = make_stack(LocalAws(moto_url),
                        (f"{label}.example.com", f"{label}.example.net"),
                        folder)
    _ACTIVE.append(result)
    try:
        result.provision()
        yield result
    finally:
        _ACTIVE.remove(result)
        result.close()


@pytest.fixture
def stack(moto_url: str, tmp_path: Path) -> Iterator[Stack]:
    with open_stack(moto_url, tmp_path) as result:
        yield result


class WorkerFactory:
    """Build workers whose only AWS endpoint is a closed local port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.workers: list[WorkerProcess] = []

    def __call__(self, **settings: str) -> WorkerProcess:
        endpoint = f"http://127.0.0.1:{free_port()}"
        base = {"DOMAINS": "example.com", "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(free_port()),
                "HEALTH_PORT": str(free_port()),
                "METRICS_PORT": str(free_port()),
                "POLL_WAIT_SECONDS": "1"}
        base.update(settings)
        worker = WorkerProcess(worker_environment(endpoint, **base),
                               self.folder,
                               name=f"worker{len(self.workers) + 1}")
        self.workers.append(worker)
        return worker

    def worker_logs(self) -> Iterator[tuple[str, str]]:
        for worker in self.workers:
            yield str(worker.stderr_path), worker.stderr_text()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()


@pytest.fixture
def offline_worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(tmp_path)
    _ACTIVE.append(factory)
    try:
        yield factory
    finally:
        _ACTIVE.remove(factory)
        factory.close()


# -- worker stderr in failure reports ---------------------------------

# Stacks and factories alive right now, whatever their fixture scope.
_ACTIVE: list[Stack | WorkerFactory] = []



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for owner in list(_ACTIVE):
        for path, text in owner.worker_logs():
            report.sections.append((f"worker stderr {path}", text))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip tests of modules that read the fixtures when those are absent."""
    if DATA_DIR.is_dir():
        return
    skip = pytest.mark.skip(reason=f"test data not found: {DATA_DIR}")
    for item in items:
        module = getattr(item, "module", None)
        if hasattr(module, "FIXTURES_DIR") or hasattr(module, "CORPUS_DIR"):
            item.add_marker(skip)
