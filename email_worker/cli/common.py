"""Errors, settings and AWS clients shared by the operator commands."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from boto3.dynamodb.types import Binary
from botocore.exceptions import BotoCoreError, ClientError

from email_worker.aws.clients import AwsClients, create_clients
from email_worker.config import Settings, load_settings
from email_worker.errors import ConfigError
from email_worker.metrics.registry import WorkerMetrics

PROG = "email-worker"
# Exit statuses of the operator commands.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# The rules commands do not need DOMAINS.  When it is unset, this value
# is used in its place so that every other setting is still validated.
_NO_DOMAINS = "domains-unset.invalid"


class CommandError(Exception):
    """Error that ends a command with one line on stderr and ``status``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def invalid(message: str) -> CommandError:
    return CommandError(message, EXIT_USAGE)


def aws_error_code(exc: BaseException) -> tuple[str, str]:
    """Return the AWS error code and message of a botocore exception."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        detail = str(error.get("Message") or "") or code
        return code, one_line(detail)
    return type(exc).__name__, one_line(str(exc))


def aws_failure(service: str, operation: str, resource: str,
                exc: BaseException) -> CommandError:
    code, detail = aws_error_code(exc)
    return CommandError(f"{service} {operation} on {resource} failed: "
                        f"{code}: {detail}", EXIT_FAILED)


AWS_EXCEPTIONS = (ClientError, BotoCoreError)


def one_line(text: str) -> str:
    return " ".join(text.split())


def settings_from(environ: Mapping[str, str],
                  need_domains: bool = True) -> Settings:
    """Load the worker's settings and raise CommandError (2) on a bad value."""
    if not need_domains and not environ.get("DOMAINS", "").strip():
        environ = {**environ, "DOMAINS": _NO_DOMAINS}
    try:
        return load_settings(environ)
    except ConfigError as exc:
        raise invalid(f"invalid configuration: {exc}") from None


def served_domains(settings: Settings) -> tuple[str, ...]:
    return () if settings.domains == (_NO_DOMAINS,) else settings.domains


def clients_for(settings: Settings) -> AwsClients:
    return create_clients(settings, WorkerMetrics())


def plain(value: Any) -> Any:
    """Turn deserialised DynamoDB values into JSON-friendly ones.

    Binary values (B, BS) are shown as hexadecimal text.
    """
    if isinstance(value, Binary):
        return value.value.hex()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() \
            else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value
