"""``main.py check``: check that everything the worker needs is reachable.

It prints one line per check, ``ok``, ``warn`` or ``FAIL``, then what was
checked and a detail.  Exit 0 when no required check failed, 1 otherwise;
a bad configuration ends with 2 before anything is contacted.
"""

from __future__ import annotations

import argparse
import smtplib
import ssl
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TextIO

from email_worker.cli.common import (AWS_EXCEPTIONS, EXIT_FAILED, EXIT_OK,
                                     aws_error_code, clients_for, one_line,
                                     settings_from)
from email_worker.config import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
# Maximum seconds for the SMTP check, whatever SMTP_TIMEOUT is.
SMTP_CHECK_TIMEOUT = 10.0
_MISSING_TABLE = "ResourceNotFoundException"


@dataclass(frozen=True)
class Result:
    status: str
    checked: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.checked}  {self.detail}"


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check", help="check the configuration, AWS resources and SMTP",
        description="Validate the configuration, then check that every "
                    "domain's queue and bucket, the DynamoDB tables and "
                    "the SMTP server are reachable.  One line per check; "
                    "exit 0 when every required check passes, 1 "
                    "otherwise, 2 for a bad configuration.")
    check.set_defaults(handler=None)


def run(args: argparse.Namespace, environ: Mapping[str, str],
        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    settings = settings_from(environ)
    results = [Result(OK, "configuration",
                      f"{len(settings.domains)} domain(s): "
                      + ", ".join(settings.domains)
                      + f"; region {settings.aws_region}"
                      + (f"; endpoint {settings.aws_endpoint_url}"
                         if settings.aws_endpoint_url else ""))]
    _emit(results[-1], out)
    clients = clients_for(settings)
    checks: list[Callable[[], Result]] = []
    for domain in settings.domains:
        checks.append(lambda d=domain: check_queue(clients.sqs, settings, d))
        checks.append(lambda d=domain: check_bucket(clients.s3, settings, d))
    for table, key in ((settings.rules_table, "email_address"),
                       (settings.blocked_table, "email_address")):
        checks.append(lambda t=table, k=key:
                      check_table(clients.dynamodb, t, k))
    # Without these two the worker still delivers: bounce reports are not
    # rewritten, and reply limits are kept per process.
    for table, key in ((settings.messages_table, "MessageId"),
                       (settings.autoreply_table, "reply_key")):
        checks.append(lambda t=table, k=key:
                      check_table(clients.dynamodb, t, k, optional=True))
    checks.append(lambda: check_smtp(settings))
    for check in checks:
        results.append(check())
        _emit(results[-1], out)
    return EXIT_FAILED if any(r.status == FAIL for r in results) \
        else EXIT_OK


def _emit(result: Result, out: TextIO) -> None:
    print(result.line(), file=out, flush=True)


def check_queue(sqs: Any, settings: Settings, domain: str) -> Result:
    name = settings.queue_name(domain)
    checked = f"queue {domain}"
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except AWS_EXCEPTIONS as exc:
        return _failed(checked, name, "GetQueueUrl", exc)
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                          "RedrivePolicy"]
        ).get("Attributes", {})
    except AWS_EXCEPTIONS as exc:
        return _failed(checked, name, "GetQueueAttributes", exc)
    waiting = attributes.get("ApproximateNumberOfMessages", "?")
    redrive = "dead-letter queue set" if attributes.get("RedrivePolicy") \
        else "no dead-letter queue"
    return Result(OK, checked, f"{name}: {waiting} message(s) waiting, "
                            f"{redrive}")


def check_bucket(s3: Any, settings: Settings, domain: str) -> Result:
    name = settings.bucket_name(domain)
    checked = f"bucket {domain}"
    try:
        s3.head_bucket(Bucket=name)
    except AWS_EXCEPTIONS as exc:
        return _failed(checked, name, "HeadBucket", exc)
    return Result(OK, checked, f"{name}: reachable")


_WITHOUT_TABLE = {
    "MessageId": "SES bounce reports are delivered without rewriting",
    "reply_key": "each worker process keeps its own record of "
                 "out-of-office replies sent",
}


def check_table(dynamodb: Any, table: str, key: str,
                optional: bool = False) -> Result:
    checked = f"table {table}"
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except AWS_EXCEPTIONS as exc:
        code, _detail = aws_error_code(exc)
        if optional and code == _MISSING_TABLE:
            return Result(WARN, checked,
                          f"not found ({code}); optional: without it "
                          f"{_WITHOUT_TABLE.get(key, 'the worker runs')}")
        return _failed(checked, "", "DescribeTable", exc)
    hash_keys = [k["AttributeName"] for k in description.get("KeySchema", [])
                 if k.get("KeyType") == "HASH"]
    status = description.get("TableStatus", "?")
    if hash_keys != [key]:
        return Result(FAIL, checked, f"key is "
                                  f"{', '.join(hash_keys) or 'unknown'}, "
                                  f"expected {key}")
    return Result(OK, checked, f"{status}, key {key}")


def check_smtp(settings: Settings) -> Result:
    target = f"{settings.smtp_host}:{settings.smtp_port}"
    checked = "smtp"
    timeout = min(settings.smtp_timeout, SMTP_CHECK_TIMEOUT)
    try:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                              timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        return Result(FAIL, checked, f"{target}: cannot connect: "
                                  f"{_describe(exc)}")
    try:
        code, reply = client.ehlo()
        if code != 250:
            return Result(FAIL, checked, f"{target}: EHLO answered {code} "
                                      f"{_text(reply)}")
        notes = []
        if settings.smtp_use_tls:
            if not client.has_extn("starttls"):
                return Result(FAIL, checked, f"{target}: SMTP_USE_TLS is set "
                                          "but STARTTLS is not offered")
            notes.append("STARTTLS offered")
        greeting = _text(reply).splitlines()[0] if reply else ""
        return Result(OK, checked, f"{target}: EHLO {code} {greeting}"
                      + "".join(f", {n}" for n in notes))
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        return Result(FAIL, checked, f"{target}: {_describe(exc)}")
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def _failed(checked: str, name: str, operation: str,
            exc: BaseException) -> Result:
    code, detail = aws_error_code(exc)
    prefix = f"{name}: " if name else ""
    return Result(FAIL, checked, f"{prefix}{operation} failed: {code}: "
                              f"{detail}")


def _describe(exc: BaseException) -> str:
    text = one_line(str(exc)) or "no detail"
    return f"{type(exc).__name__}: {text}"


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return reply
