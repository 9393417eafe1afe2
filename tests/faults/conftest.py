"""Fixtures for the fault-injection suite, built on the end-to-end ones.

Every test here runs ``python3 main.py`` against the per-process moto
server and an aiosmtpd sink, breaks one thing (the SMTP server, a table,
the SQS endpoint, the process itself), and then counts, from outside,
what the SMTP server received, what the S3 metadata contains and what
the queues still hold.  Each test also records one outcome row through the
``reliability`` fixture; when ``RELIABILITY_REPORT`` names a file, the
rows of the whole run are written there as JSON at the end of the
session, for ``tools/reliability_report.py``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.fault_proxy import FaultProxy
from devstack.provision import LocalAws, dashed
# The moto_url fixture and the hook that adds worker logs to failure
# reports are imported so that they apply to this folder too.
from tests.e2e.conftest import (_ACTIVE, Stack, WorkerProcess,  # noqa: F401
                                build_message, make_stack, moto_url,
                                pytest_runtest_makereport, unique_label,
                                wait_until, worker_environment)

SENDER = "fault@sender.example"
REPORT_VARIABLE = "RELIABILITY_REPORT"
_PROPERTY = "reliability"


# -- the stack --------------------------------------------------------


@contextlib.contextmanager
def fault_stack(moto_url: str, folder: Path,
                dead_letter_queue: bool = False) -> Iterator[Stack]:
    """Yield two fresh domains, with dead-letter queues if requested."""
    label = unique_label()
    stack = make_stack(LocalAws(moto_url),
                       (f"{label}.example.com", f"{label}.example.net"),
                       folder)
    _ACTIVE.append(stack)
    try:
        stack.provision(dead_letter_queue=dead_letter_queue)
        yield stack
    finally:
        _ACTIVE.remove(stack)
        stack.close()


@pytest.fixture
def stack(moto_url: str, tmp_path: Path) -> Iterator[Stack]:
    with fault_stack(moto_url, tmp_path) as result:
        yield result


@pytest.fixture
def dlq_stack(moto_url: str, tmp_path: Path) -> Iterator[Stack]:
    with fault_stack(moto_url, tmp_path, dead_letter_queue=True) as result:
        yield result


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of this process's moto server."""
    port = urlsplit(moto_url).port
    assert port is not None
    with FaultProxy(port) as started:
        yield started


def start_worker(stack: Stack, endpoint: str | None = None,
                 wait: bool = True, **overrides: str) -> WorkerProcess:
    """Start main.py for ``stack``, optionally through another endpoint."""
    if endpoint is None:
        return stack.start_worker(wait=wait, **overrides)
    env = worker_environment(endpoint, **stack.settings(**overrides))
    worker = WorkerProcess(env, stack.folder,
                           name=f"worker{len(stack.workers) + 1}")
    stack.workers.append(worker)
    worker.start()
    if wait:
        worker.wait_ready()
    return worker


# -- mail in and observations ----------------------------------------


def send_simple(stack: Stack, domain: str, local: str,
                extra: Iterable[str] = ()) -> str:
    """Queue a small message to ``local@domain`` (and ``extra``)."""
    recipients = [f"{local}@{domain}", *extra]
    raw = build_message(SENDER, recipients[0], local)
    return stack.deliver(domain, raw, SENDER, recipients)


def send_many(stack: Stack, count: int,
              prefix: str = "m") -> dict[str, tuple[str, str]]:
    """Queue ``count`` messages over both domains.

    Returns recipient -> (domain, key).
    """
    sent = {}
    for number in range(count):
        domain = stack.domains[number % 2]
        local = f"{prefix}{number}"
        sent[f"{local}@{domain}"] = (domain,
                                     send_simple(stack, domain, local))
    return sent


def recipient_counts(stack: Stack) -> Counter[str]:
    return Counter(r for m in stack.sink.received() for r in m.rcpt_tos)


def dead_letter_url(stack: Stack, domain: str) -> str:
    return str(stack.aws.sqs.get_queue_url(
        QueueName=f"{dashed(domain)}-dlq")["QueueUrl"])


def dead_letter_depth(stack: Stack, domain: str) -> int:
    return stack.aws.queue_depth(dead_letter_url(stack, domain))


def health_ok(worker: WorkerProcess) -> bool:
    """Return True when /health returns 200 and every polling thread
    is alive."""
    try:
        status, body = worker.get_json("/health")
    except OSError:
        return False
    return status == 200 and all(
        d["thread_alive"] for d in body["domains"].values())


@dataclass
class Tally:
    """Lost and duplicated recipients among those expected once."""

    expected: int
    lost: list[str]
    duplicated: dict[str, int]

    @property
    def duplicate_copies(self) -> int:
        return sum(n - 1 for n in self.duplicated.values())


def tally(stack: Stack, expected: Iterable[str],
          parked: Iterable[str] = ()) -> Tally:
    """Count the ``expected`` recipients never delivered nor parked, and
    the recipients delivered more than once."""
    counts = recipient_counts(stack)
    expected = list(expected)
    parked_set = set(parked)
    lost = [r for r in expected if counts[r] == 0 and r not in parked_set]
    duplicated = {r: n for r, n in counts.items() if n > 1}
    return Tally(len(expected), lost, duplicated)


def log_lines(worker: WorkerProcess, text: str) -> list[str]:
    return [line for line in worker.stderr_text().splitlines()
            if text in line]


# -- outcome rows -----------------------------------------------------


@dataclass
class Outcome:
    """One row of the reliability table."""

    fault: str
    expected: str
    messages: int = 0
    lost: int | None = None
    duplicated: int | None = None
    parked: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Attach outcome rows to the running test, for the session report."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def record(self, fault: str, expected: str, messages: int = 0,
               lost: int | None = None, duplicated: int | None = None,
               parked: int | None = None, **notes: Any) -> None:
        row = Outcome(fault, expected, messages, lost, duplicated, parked,
                      notes)
        self._item.user_properties.append((_PROPERTY, asdict(row)))


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.node)


# -- the session report -----------------------------------------------

_ROWS: list[dict[str, Any]] = []
_STARTED: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _STARTED.append(time.time())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the rows of each finished test with its outcome.

    Under xdist this runs in the controlling process too, with the rows
    carried over in ``user_properties``.
    """
    if "tests/faults/" not in report.nodeid:
        return
    failed_early = report.when == "setup" and not report.passed
    if report.when != "call" and not failed_early:
        return
    rows = [dict(value) for name, value in report.user_properties
            if name == _PROPERTY]
    if not rows:
        rows = [asdict(Outcome(report.nodeid.rsplit("::", 1)[-1],
                               "(no row recorded)"))]
    for row in rows:
        row["test"] = report.nodeid
        row["outcome"] = report.outcome
        row["seconds"] = round(report.duration, 1)
        _ROWS.append(row)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(REPORT_VARIABLE)
    if not path or hasattr(session.config, "workerinput"):
        return
    started = _STARTED[0] if _STARTED else time.time()
    document = {
        "command": " ".join(["python -m pytest",
                             *session.config.invocation_params.args]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}, "
                   f"Python {platform.python_version()}",
        "seconds": round(time.time() - started, 1),
        "exit_status": int(exitstatus),
        "rows": sorted(_ROWS, key=lambda row: row["test"]),
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n")
