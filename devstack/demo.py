"""Run the worker end to end on a local stack and print what happened.

``python -m devstack.demo [--mail FOLDER]`` starts moto in server mode
and an SMTP server that writes what it receives into a folder, creates
queues, buckets and tables for two domains, sends the project's sample
messages (and every .eml file of FOLDER) as SES would announce them,
runs ``python3 main.py`` until every message is finished, prints a
summary and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

from devstack.aws_endpoint import MotoServer, client_environment
from devstack.inject import deliver_to_ses, ses_message_id
from devstack.ports import free_port, wait_for_port
from devstack.provision import LocalAws, bucket_name
from devstack.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DOMAINS = ("example.com", "example.org")
BLOCKED_PATTERN = "*@junk.example"
_METRIC_RE = re.compile(
    r'^emails_processed_total\{domain="([^"]+)",status="([^"]+)"\} (\S+)$')


def main(argv: list[str] | None = None) -> int:
    options = _parse_arguments(argv)
    output = Path(options.output).resolve()
    mailbox = output / "mailbox"
    if mailbox.exists():
        for old in mailbox.iterdir():
            old.unlink()
    output.mkdir(parents=True, exist_ok=True)
    messages = _collect_messages(options.mail)
    print(f"demo: {len(messages)} message(s) for {', '.join(DOMAINS)}")
    with open(output / "moto.log", "wb") as moto_log, \
            MotoServer(log=moto_log) as moto, \
            SmtpSink(folder=mailbox) as sink:
        aws = LocalAws(moto.url)
        queues = _provision(aws)
        _send_all(aws, queues, messages, output / "sent.json")
        counts = _run_worker(moto.url, sink.port, output, len(messages),
                             options.timeout)
    _print_summary(counts, mailbox, output)
    return 0 if sum(counts.values()) == len(messages) else 1


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mail", help="a folder of .eml files to send too")
    parser.add_argument("--output", default=str(ROOT / "demo-output"),
                        help="folder for the received mail and the logs "
                             "(default: demo-output)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds to wait for the worker (default 300)")
    return parser.parse_args(argv)


def _collect_messages(folder: str | None) -> list[tuple[str, bytes]]:
    paths = sorted(SAMPLES.glob("*.eml"))
    if folder:
        extra = Path(folder)
        if not extra.is_dir():
            raise SystemExit(f"demo: MAIL folder not found: {extra}")
        found = sorted(extra.rglob("*.eml"))
        if not found:
            print(f"demo: no .eml files in {extra}; sending the samples "
                  "only")
        paths += found
    return [(str(p), as_stored_by_ses(p.read_bytes())) for p in paths]


def as_stored_by_ses(raw: bytes) -> bytes:
    """Return ``raw`` with CRLF line endings, as SES stores mail.

    SES receives mail over SMTP, where every line ends in CRLF, so files
    saved with bare LF endings are converted before they are stored.
    """
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _provision(aws: LocalAws) -> dict[str, str]:
    aws.create_tables()
    queues = {domain: aws.create_domain(domain) for domain in DOMAINS}
    for domain in DOMAINS:
        aws.block(domain, BLOCKED_PATTERN)
    return queues


def _send_all(aws: LocalAws, queues: dict[str, str],
              messages: list[tuple[str, bytes]], index_file: Path) -> None:
    """Announce each message in the three forms SES setups produce."""
    sent = []
    for index, (path, raw) in enumerate(messages):
        sender, recipients = _envelope(raw)
        by_domain = {d: [r for r in recipients if r.endswith("@" + d)]
                     for d in DOMAINS}
        targets = {d: rs for d, rs in by_domain.items() if rs}
        if not targets:
            domain = DOMAINS[index % len(DOMAINS)]
            targets = {domain: [f"user{index % 3}@{domain}"]}
        for domain, domain_recipients in targets.items():
            if index % 3 == 2 and len(targets) == 1 and \
                    by_domain.get(domain):
                form = "s3-event"
                key = _send_s3_event(aws, queues[domain], domain, raw)
            else:
                form = "sns" if index % 2 == 0 else "raw"
                key = deliver_to_ses(aws, queues[domain], domain, raw,
                                     sender, domain_recipients,
                                     wrap=index % 2 == 0)
            sent.append({"file": path, "domain": domain, "key": key,
                         "form": form, "sender": sender,
                         "recipients": domain_recipients})
    index_file.write_text(json.dumps(sent, indent=2) + "\n")


def _send_s3_event(aws: LocalAws, queue_url: str, domain: str,
                   raw: bytes) -> str:
    key = f"inbound/{ses_message_id()}"
    bucket = bucket_name(domain)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=raw)
    event = {"Records": [{"eventSource": "aws:s3",
                          "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": bucket},
                                 "object": {"key": key}}}]}
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    return key


def _envelope(raw: bytes) -> tuple[str, list[str]]:
    headers = BytesHeaderParser().parsebytes(raw)
    return_path = str(headers.get("Return-Path", "")).strip()
    if return_path == "<>":
        # Bounces have the null reverse-path, and SES reports it as "".
        return "", _header_recipients(headers)
    senders = getaddresses([str(v) for v in
                            headers.get_all("Return-Path", [])
                            + headers.get_all("From", [])])
    sender = next((a for _, a in senders if "@" in a),
                  "sender@example.net")
    return sender, _header_recipients(headers)


def _header_recipients(headers: Message) -> list[str]:
    return [a.lower() for _, a in getaddresses(
        [str(v) for v in headers.get_all("To", [])
         + headers.get_all("Cc", [])]) if "@" in a]


def _run_worker(endpoint: str, smtp_port: int, output: Path,
                expected: int, timeout: float) -> Counter[tuple[str, str]]:
    health_port, metrics_port = free_port(), free_port()
    env = {**os.environ, **client_environment(endpoint),
           "DOMAINS": ",".join(DOMAINS), "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "HEALTH_PORT": str(health_port),
           "METRICS_PORT": str(metrics_port), "POLL_WAIT_SECONDS": "2",
           "RETRY_DELAY_SECONDS": "2", "MAX_RECEIVE_COUNT": "3",
           "WORKER_NAME": "demo-worker"}
    print(f"demo: worker log in {output / 'worker.log'}")
    with open(output / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, str(ROOT / "main.py")],
                                  env=env, cwd=output, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_for_port(metrics_port, timeout=30)
            counts = _wait_for_outcomes(metrics_port, expected, timeout)
        finally:
            worker.send_signal(signal.SIGTERM)
            status = worker.wait(timeout=60)
    print(f"demo: worker stopped with exit status {status}")
    return counts


def _wait_for_outcomes(metrics_port: int, expected: int,
                       timeout: float) -> Counter[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    counts: Counter[tuple[str, str]] = Counter()
    while time.monotonic() < deadline:
        counts = _processed_counts(metrics_port)
        if sum(counts.values()) >= expected:
            break
        time.sleep(0.5)
    else:
        print(f"demo: timed out after {timeout:.0f} s with "
              f"{sum(counts.values())} of {expected} finished")
    return counts


def _processed_counts(metrics_port: int) -> Counter[tuple[str, str]]:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        match = _METRIC_RE.match(line)
        if match:
            counts[(match[1], match[2])] += int(float(match[3]))
    return counts


def _print_summary(counts: Counter[tuple[str, str]], mailbox: Path,
                   output: Path) -> None:
    statuses = ("delivered", "partial", "blocked", "failed")
    print()
    print(f"{'domain':<16}" + "".join(f"{s:>11}" for s in statuses))
    for domain in DOMAINS:
        print(f"{domain:<16}" + "".join(
            f"{counts.get((domain, s), 0):>11}" for s in statuses))
    delivered = len(list(mailbox.glob("*.eml")))
    print()
    print(f"demo: {delivered} SMTP transaction(s) stored in {mailbox}")
    print(f"demo: each NNNNN.eml has its envelope in NNNNN.json; "
          f"{output / 'sent.json'} lists what was sent (file, domain, S3 "
          f"key, form); logs are in {output}")


if __name__ == "__main__":
    sys.exit(main())
