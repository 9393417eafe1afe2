"""Benchmark the worker against the floor of the stack it runs on.

``python -m bench.run`` starts moto in server mode and an SMTP server on
loopback, stores N messages in S3, and feeds their notifications to the
queues at a rate that keeps each backlog under BACKLOG messages (moto's
receive cost grows with queue depth, so a deep backlog would measure
moto).  It runs the real ``python3 main.py`` and then the floor
(bench/floor.py: the same calls with no worker logic) on the same load,
and prints throughput, latency, calls per message and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.sink import TimingSink
from devstack.aws_endpoint import MotoServer, client_environment
from devstack.inject import ses_received, sns_wrap
from devstack.ports import free_port, wait_for_port
from devstack.provision import RULES_TABLE, LocalAws, bucket_name

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = 50
RECIPIENTS_PER_MESSAGE = 3
_METRIC = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


@dataclass
class Result:
    """Figures of one run of the worker or the floor."""

    name: str
    messages: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Stack:
    """moto, the timing sink and the provisioned domains for one run."""

    def __init__(self, domains: int) -> None:
        self.moto = MotoServer().start()
        self.sink = TimingSink(free_port()).start()
        self.aws = LocalAws(self.moto.url)
        self.aws.create_tables()
        self.domains = [f"bench{i}.example.com" for i in range(domains)]
        self.queues = {d: self.aws.create_domain(d) for d in self.domains}

    def stop(self) -> None:
        self.sink.stop()
        self.moto.stop()

    def environment(self, threads: int) -> dict[str, str]:
        return {**os.environ, **client_environment(self.moto.url),
                "DOMAINS": ",".join(self.domains),
                "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.sink.port),
                "WORKER_THREADS": str(threads), "POLL_WAIT_SECONDS": "1",
                "LOG_LEVEL": "WARNING", "WORKER_NAME": "bench"}


def make_message(bench_id: int, domain: str, size: int) -> bytes:
    """Build a CRLF message of about ``size`` bytes."""
    head = (f"Return-Path: <sender@example.net>\r\n"
            f"From: Sender <sender@example.net>\r\n"
            f"To: {', '.join(_recipients(domain))}\r\n"
            f"Subject: benchmark message {bench_id}\r\n"
            f"Message-ID: <bench-{bench_id}@example.net>\r\n"
            f"X-Bench-Id: {bench_id}\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog. 0123456789\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def _recipients(domain: str) -> list[str]:
    return [f"user{i}@{domain}" for i in range(RECIPIENTS_PER_MESSAGE)]


def store_messages(stack: Stack, count: int, size: int,
                   prefix: str) -> list[tuple[int, str, str]]:
    """Put ``count`` objects in S3; return (id, domain, key) per message."""
    stored = []
    for bench_id in range(count):
        domain = stack.domains[bench_id % len(stack.domains)]
        key = f"{prefix}/{bench_id}"
        stack.aws.s3.put_object(Bucket=bucket_name(domain), Key=key,
                                Body=make_message(bench_id, domain, size))
        stored.append((bench_id, domain, key))
    for domain in stack.domains:
        stack.aws.dynamodb.put_item(TableName=RULES_TABLE, Item={
            "email_address": {"S": f"user0@{domain}"},
            "ooo_active": {"BOOL": False}})
    return stored


def feed(stack: Stack, stored: list[tuple[int, str, str]],
         enqueued: dict[int, float], stop: threading.Event) -> None:
    """Send notifications, keeping each queue's backlog under BACKLOG."""
    pending = list(stored)
    while pending and not stop.is_set():
        arrivals = stack.sink.arrivals
        in_queue = sum(1 for i in enqueued if i not in arrivals)
        room = BACKLOG * len(stack.domains) - in_queue
        if room < 10:
            time.sleep(0.01)
            continue
        batch, pending = pending[:10], pending[10:]
        by_domain: dict[str, list[dict[str, str]]] = {}
        for bench_id, domain, key in batch:
            document = ses_received(bucket_name(domain), key,
                                    "sender@example.net",
                                    _recipients(domain), f"bench{bench_id}")
            by_domain.setdefault(domain, []).append(
                {"Id": str(bench_id),
                 "MessageBody": json.dumps(sns_wrap(document))})
            enqueued[bench_id] = time.monotonic()
        for domain, entries in by_domain.items():
            stack.aws.sqs.send_message_batch(QueueUrl=stack.queues[domain],
                                             Entries=entries)


def run_process(stack: Stack, command: list[str], env: dict[str, str],
                stored: list[tuple[int, str, str]], name: str,
                metrics_port: int | None, timeout: float) -> Result:
    """Start a process, feed it, wait for every arrival, then stop it."""
    expected_ids = {bench_id for bench_id, _, _ in stored}
    process = subprocess.Popen(command, env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    if metrics_port:
        wait_for_port(metrics_port, 60)
    enqueued: dict[int, float] = {}
    stop = threading.Event()
    feeder = threading.Thread(target=feed,
                              args=(stack, stored, enqueued, stop))
    started = time.monotonic()
    feeder.start()
    deadline = started + timeout
    while not expected_ids <= stack.sink.arrivals.keys():
        if time.monotonic() > deadline or process.poll() is not None:
            break
        time.sleep(0.02)
    finished = max((stack.sink.arrivals.get(i, 0.0) for i in expected_ids),
                   default=started)
    stop.set()
    feeder.join()
    metrics = scrape(metrics_port) if metrics_port else {}
    peak = peak_rss_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    delivered = [i for i in expected_ids if i in stack.sink.arrivals]
    latencies = [stack.sink.arrivals[i] - enqueued[i] for i in delivered
                 if i in enqueued]
    return Result(name, len(delivered), finished - started, latencies, peak,
                  metrics)


def scrape(port: int) -> dict[str, float]:
    """Return the counters of /metrics, keyed by name and labels."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match and not match[1].endswith("_created"):
            values[f"{match[1]}{{{match[2]}}}"] = float(match[3])
    return values


def peak_rss_mb(pid: int) -> float:
    """Return the process's peak resident set size (VmHWM) in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def current_rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def _status_kb(pid: int, field_name: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_command() -> list[str]:
    return [sys.executable, str(ROOT / "main.py")]


def measure(domains: int, messages: int, size: int, threads: int,
            with_floor: bool, timeout: float) -> tuple[Result, Result | None]:
    """Run the worker, and the floor if asked, on fresh stacks."""
    worker = _measure_one(domains, messages, size, threads, "worker",
                          timeout)
    floor = None
    if with_floor:
        floor = _measure_one(domains, messages, size, threads, "floor",
                             timeout)
    return worker, floor


def measure_rounds(args: argparse.Namespace
                   ) -> tuple[Result, Result, list[float]]:
    """Alternate worker and floor runs; return the totals and the ratios.

    Other load on the machine changes over a run, so the worker and the
    floor take turns, and each round gives its own ratio.
    """
    per_round = max(10, args.messages // args.rounds)
    workers: list[Result] = []
    floors: list[Result] = []
    for number in range(args.rounds):
        order = ("worker", "floor") if number % 2 == 0 else \
            ("floor", "worker")
        for name in order:
            result = _measure_one(args.domains, per_round, args.size,
                                  args.threads, name, args.timeout)
            (workers if name == "worker" else floors).append(result)
    ratios = [w.rate / f.rate for w, f in zip(workers, floors) if f.rate]
    return _combine("worker", workers), _combine("floor", floors), ratios


def _combine(name: str, results: list[Result]) -> Result:
    metrics: dict[str, float] = {}
    for result in results:
        for key, value in result.metrics.items():
            metrics[key] = metrics.get(key, 0.0) + value
    return Result(name, sum(r.messages for r in results),
                  sum(r.seconds for r in results),
                  [x for r in results for x in r.latencies],
                  max(r.peak_rss_mb for r in results), metrics)


def _measure_one(domains: int, messages: int, size: int, threads: int,
                 name: str, timeout: float) -> Result:
    stack = Stack(domains)
    try:
        stored = store_messages(stack, messages, size, name)
        env = stack.environment(threads)
        if name == "floor":
            return run_process(stack, [sys.executable, "-m", "bench.floor"],
                               env, stored, name, None, timeout)
        metrics_port = free_port()
        env.update(HEALTH_PORT=str(free_port()),
                   METRICS_PORT=str(metrics_port))
        return run_process(stack, worker_command(), env, stored, name,
                           metrics_port, timeout)
    finally:
        stack.stop()


def measure_large_message(size: int) -> dict[str, float]:
    """Return idle and peak RSS of the worker for one message of ``size``."""
    stack = Stack(1)
    try:
        stored = store_messages(stack, 1, size, "large")
        env = stack.environment(1)
        metrics_port = free_port()
        env.update(HEALTH_PORT=str(free_port()),
                   METRICS_PORT=str(metrics_port))
        process = subprocess.Popen(worker_command(), env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
        wait_for_port(metrics_port, 60)
        time.sleep(2)
        idle = current_rss_mb(process.pid)
        result = run_process_existing(stack, process, stored)
    finally:
        stack.stop()
    return {"idle_mb": idle, "peak_mb": result, "size_mb": size / 1e6}


def run_process_existing(stack: Stack, process: subprocess.Popen[bytes],
                         stored: list[tuple[int, str, str]]) -> float:
    enqueued: dict[int, float] = {}
    feed(stack, stored, enqueued, threading.Event())
    deadline = time.monotonic() + 300
    while not stack.sink.arrivals and time.monotonic() < deadline:
        time.sleep(0.05)
    peak = peak_rss_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    return peak


def measure_idle_cpu(seconds: float) -> float:
    """Return the idle worker's CPU use in percent of one core."""
    stack = Stack(2)
    try:
        env = stack.environment(4)
        env.update(POLL_WAIT_SECONDS="20", HEALTH_PORT=str(free_port()),
                   METRICS_PORT=str(free_port()))
        process = subprocess.Popen(worker_command(), env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
        time.sleep(3)
        before = cpu_seconds(process.pid)
        time.sleep(seconds)
        used = cpu_seconds(process.pid) - before
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        stack.stop()
    return 100 * used / seconds


def calls_per_message(result: Result) -> dict[str, float]:
    """Return AWS calls per message by operation, and SMTP connections."""
    per_message: dict[str, float] = {}
    for key, value in result.metrics.items():
        if key.startswith("aws_api_calls_total"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            name = f"{labels['service']}:{labels['operation']}"
            per_message[name] = value / max(1, result.messages)
    connections = sum(v for k, v in result.metrics.items()
                      if k.startswith("smtp_connections_opened_total"))
    per_message["smtp:connections"] = connections / max(1, result.messages)
    return per_message


def render(args: argparse.Namespace, worker: Result, floor: Result,
           ratios: list[float], calls: dict[str, float],
           large: dict[str, float],
           idle_cpu: float, scaling: list[tuple[str, Result]]) -> str:
    aws_total = sum(v for k, v in calls.items() if not k.startswith("smtp"))
    dynamodb = sum(v for k, v in calls.items() if k.startswith("dynamodb"))
    lines = [
        f"## Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{' '.join(['python -m bench.run'] + sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}; moto server and aiosmtpd on "
        "127.0.0.1 in the same machine.",
        "",
        f"{args.messages} messages of {args.size} bytes in {args.rounds} "
        "rounds (worker and floor take turns on fresh stacks), "
        f"{RECIPIENTS_PER_MESSAGE} recipients each, {args.domains} domains, "
        f"WORKER_THREADS={args.threads}, backlog kept under {BACKLOG} per "
        "queue.",
        "",
        "| | worker | floor |",
        "| --- | ---: | ---: |",
        f"| messages per second | {worker.rate:.1f} | {floor.rate:.1f} |",
        f"| worker / floor, median of {len(ratios)} rounds | "
        f"{statistics.median(ratios):.2f} | 1.00 |"
        if ratios else "| worker / floor | n/a | |",
        f"| worker / floor, each round | "
        f"{', '.join(f'{r:.2f}' for r in ratios)} | |",
        f"| p50 latency, enqueue to DATA (ms) | "
        f"{worker.percentile(0.5) * 1000:.0f} | "
        f"{floor.percentile(0.5) * 1000:.0f} |",
        f"| p99 latency (ms) | {worker.percentile(0.99) * 1000:.0f} | "
        f"{floor.percentile(0.99) * 1000:.0f} |",
        f"| peak RSS (MB) | {worker.peak_rss_mb:.0f} | "
        f"{floor.peak_rss_mb:.0f} |",
        "",
        f"AWS API calls per message: {aws_total:.2f} "
        f"(DynamoDB {dynamodb:.2f}); SMTP connections opened per message: "
        f"{calls['smtp:connections']:.3f}.",
        "",
        "| call | per message |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {value:.3f} |"
              for name, value in sorted(calls.items())]
    lines += [
        "",
        f"One message of {large['size_mb']:.0f} MB: idle RSS "
        f"{large['idle_mb']:.0f} MB, peak {large['peak_mb']:.0f} MB, so "
        f"{(large['peak_mb'] - large['idle_mb']) / large['size_mb']:.1f} × "
        "its size above idle.",
        "",
        f"Idle worker, 2 domains, empty queues, POLL_WAIT_SECONDS=20: "
        f"{idle_cpu:.2f} % of one core.",
    ]
    if scaling:
        lines += ["", "| variant | messages | messages per second | "
                  "peak RSS (MB) |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {label} | {r.messages} | {r.rate:.1f} | "
                  f"{r.peak_rss_mb:.0f} |" for label, r in scaling]
    return "\n".join(lines) + "\n"


def scaling_runs(args: argparse.Namespace) -> list[tuple[str, Result]]:
    runs = []
    for domains in (1, 2, 4):
        worker, _ = measure(domains, args.scale_messages, 5_000,
                            args.threads, False, args.timeout)
        runs.append((f"{domains} domain(s), 5 KB", worker))
    for size, count in ((1_000_000, 60), (10_000_000, 10)):
        worker, _ = measure(2, count, size, args.threads, False,
                            args.timeout)
        runs.append((f"2 domains, {size // 1_000_000} MB", worker))
    return runs


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=5000,
                        help="message size in bytes (default 5000)")
    parser.add_argument("--domains", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating worker and floor runs")
    parser.add_argument("--threads", type=int, default=4,
                        help="WORKER_THREADS, also used by the floor")
    parser.add_argument("--large-mb", type=int, default=40,
                        help="size of the single large message, in MB")
    parser.add_argument("--scale-messages", type=int, default=400,
                        help="messages per scaling run; 0 skips them")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--output", default=str(ROOT / "docs" /
                                                "BENCHMARKS.md"),
                        help="markdown file to append the results to")
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    worker, floor, ratios = measure_rounds(args)
    calls = calls_per_message(worker)
    large = measure_large_message(args.large_mb * 1_000_000)
    idle_cpu = measure_idle_cpu(20)
    scaling = scaling_runs(args) if args.scale_messages else []
    report = render(args, worker, floor, ratios, calls, large, idle_cpu,
                    scaling)
    print(report)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.exists():
        output.write_text("# Benchmarks\n\nProduced by `make bench`; each "
                          "run appends a section.\n\n")
    with output.open("a") as handle:
        handle.write(report + "\n")
    expected = max(10, args.messages // args.rounds) * args.rounds
    return 0 if worker.messages == expected else 1


if __name__ == "__main__":
    sys.exit(main())
