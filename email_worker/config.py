"""Settings read from the environment, validated once at start-up."""

from __future__ import annotations

import ipaddress
import re
import socket
from string import Formatter
from urllib.parse import urlsplit
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

from email_worker.errors import ConfigError

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TRUE = ("1", "true", "yes", "on")
_MAX_WORKER_NAME = 128
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Settings:
    """Every setting of the worker, with the SPEC's defaults."""

    domains: tuple[str, ...]
    aws_region: str = "us-east-2"
    aws_endpoint_url: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_pass: str | None = None
    smtp_use_tls: bool = False
    smtp_timeout: float = 30.0
    internal_smtp_port: int = 2525
    rules_table: str = "email-rules"
    messages_table: str = "ses-outbound-messages"
    blocked_table: str = "email-blocked-senders"
    autoreply_table: str = "email-autoreply-log"
    queue_name_template: str = "{domain_dashed}-queue"
    bucket_name_template: str = "{domain_dashed}-emails"
    http_bind: str = "127.0.0.1"
    health_port: int = 8080
    metrics_port: int = 8000
    worker_name: str = "worker"
    poll_wait_seconds: int = 20
    visibility_timeout: int = 300
    worker_threads: int = 4
    max_receive_count: int = 5
    retry_delay_seconds: int = 30
    shutdown_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: str = "text"

    def queue_name(self, domain: str) -> str:
        return _expand(self.queue_name_template, domain)

    def bucket_name(self, domain: str) -> str:
        return _expand(self.bucket_name_template, domain)


def _expand(template: str, domain: str) -> str:
    return template.format(domain=domain,
                           domain_dashed=domain.replace(".", "-"))


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from ``environ``; raise ConfigError on a bad value."""
    reader = _Reader(environ)
    settings = Settings(
        domains=reader.get("DOMAINS", _parse_domains, None),
        aws_region=reader.get("AWS_REGION", _parse_region, "us-east-2"),
        aws_endpoint_url=reader.optional("AWS_ENDPOINT_URL",
                                         _parse_url),
        smtp_host=reader.text("SMTP_HOST", "localhost"),
        smtp_port=reader.port("SMTP_PORT", 25),
        smtp_user=reader.optional("SMTP_USER", str),
        smtp_pass=reader.optional("SMTP_PASS", str),
        smtp_use_tls=reader.get("SMTP_USE_TLS", _parse_bool, False),
        smtp_timeout=reader.number("SMTP_TIMEOUT", 30.0, 1, 600),
        internal_smtp_port=reader.port("INTERNAL_SMTP_PORT", 2525),
        rules_table=reader.text("DYNAMODB_RULES_TABLE", "email-rules"),
        messages_table=reader.text("DYNAMODB_MESSAGES_TABLE",
                                   "ses-outbound-messages"),
        blocked_table=reader.text("DYNAMODB_BLOCKED_TABLE",
                                  "email-blocked-senders"),
        autoreply_table=reader.text("DYNAMODB_AUTOREPLY_TABLE",
                                    "email-autoreply-log"),
        queue_name_template=reader.get("QUEUE_NAME_TEMPLATE",
                                       _parse_template,
                                       "{domain_dashed}-queue"),
        bucket_name_template=reader.get("BUCKET_NAME_TEMPLATE",
                                        _parse_template,
                                        "{domain_dashed}-emails"),
        http_bind=reader.get("HTTP_BIND", _parse_bind_address,
                             "127.0.0.1"),
        health_port=reader.port("HEALTH_PORT", 8080),
        metrics_port=reader.port("METRICS_PORT", 8000),
        worker_name=reader.get("WORKER_NAME", _parse_worker_name,
                               socket.gethostname()[:_MAX_WORKER_NAME]),
        poll_wait_seconds=reader.integer("POLL_WAIT_SECONDS", 20, 0, 20),
        visibility_timeout=reader.integer("VISIBILITY_TIMEOUT", 300,
                                          10, 43_200),
        worker_threads=reader.integer("WORKER_THREADS", 4, 1, 64),
        max_receive_count=reader.integer("MAX_RECEIVE_COUNT", 5, 1, 1000),
        retry_delay_seconds=reader.integer("RETRY_DELAY_SECONDS", 30, 0,
                                           900),
        shutdown_timeout=reader.number("SHUTDOWN_TIMEOUT", 30.0, 0, 3600),
        log_level=reader.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
        log_format=reader.choice("LOG_FORMAT", "text", LOG_FORMATS,
                                 upper=False),
    )
    _check_resource_names(settings)
    if settings.health_port == settings.metrics_port:
        raise ConfigError("METRICS_PORT",
                          "must differ from HEALTH_PORT "
                          f"({settings.health_port})")
    return settings


class _Reader:
    """Read typed values and name the variable in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, parse: Callable[[str], T],
            default: T | None) -> T:
        raw = self._environ.get(name)
        if raw is None or raw.strip() == "":
            if default is None:
                raise ConfigError(name, "is required but not set")
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(name, f"{exc} (got {raw!r})") from None

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return None
        return self.get(name, parse, None)

    def text(self, name: str, default: str) -> str:
        return self.get(name, str, default)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self.get(name, _ranged(int, low, high), default)

    def number(self, name: str, default: float, low: float,
               high: float) -> float:
        return self.get(name, _ranged(float, low, high), default)

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, 1, 65_535)

    def choice(self, name: str, default: str, allowed: tuple[str, ...],
               upper: bool = True) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in allowed:
                raise ValueError("must be one of " + ", ".join(allowed))
            return value
        return self.get(name, parse, default)


def _ranged(kind: Callable[[str], T], low: float,
            high: float) -> Callable[[str], T]:
    pattern = _INTEGER_RE if kind is int else _NUMBER_RE

    def parse(raw: str) -> T:
        try:
            if not pattern.match(raw):
                raise ValueError(raw)
            value = kind(raw)
        except ValueError:
            raise ValueError(f"must be a number from {low} to {high}") \
                from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(f"must be from {low} to {high}")
        return value
    return parse


def _parse_domains(raw: str) -> tuple[str, ...]:
    domains: list[str] = []
    for part in raw.split(","):
        domain = part.strip().lower().rstrip(".")
        if not domain:
            continue
        if not _DOMAIN_RE.match(domain):
            raise ValueError(f"{domain!r} is not a valid domain name")
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise ValueError("must list at least one domain")
    return tuple(domains)


def _parse_worker_name(raw: str) -> str:
    # The name is stored in S3 metadata, which must be ASCII and fit 2 KB.
    if not raw.isascii() or not raw.isprintable():
        raise ValueError("must be printable ASCII")
    if len(raw) > _MAX_WORKER_NAME:
        raise ValueError(f"must be at most {_MAX_WORKER_NAME} characters")
    return raw


def _parse_bool(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be true or false")


def _parse_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname \
            or re.search(r"\s", raw):
        raise ValueError("must be an http:// or https:// URL")
    try:
        parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return raw.rstrip("/")


def _parse_bind_address(raw: str) -> str:
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        if raw != "localhost":
            raise ValueError("must be an IP address such as 127.0.0.1 or "
                             "0.0.0.0") from None
    return raw


def _parse_region(raw: str) -> str:
    if not _REGION_RE.match(raw):
        raise ValueError("must be an AWS region name such as us-east-2")
    return raw


def _parse_template(raw: str) -> str:
    fields = []
    try:
        for _text, name, spec, conversion in Formatter().parse(raw):
            if name is not None:
                fields.append((name, spec, conversion))
    except ValueError:
        raise ValueError("has unbalanced braces") from None
    for name, spec, conversion in fields:
        if name not in ("domain", "domain_dashed") or spec or conversion:
            raise ValueError("may only use the placeholders {domain} and "
                             "{domain_dashed}")
    return raw


def _check_resource_names(settings: Settings) -> None:
    """Reject templates that give invalid or shared queue or bucket names."""
    queues = [settings.queue_name(d) for d in settings.domains]
    buckets = [settings.bucket_name(d) for d in settings.domains]
    for queue in queues:
        if not _QUEUE_NAME_RE.match(queue):
            raise ConfigError("QUEUE_NAME_TEMPLATE",
                              f"gives {queue!r}, which is not a valid SQS "
                              "queue name (letters, digits, - and _)")
    for bucket in buckets:
        if not _BUCKET_NAME_RE.match(bucket):
            raise ConfigError("BUCKET_NAME_TEMPLATE",
                              f"gives {bucket!r}, which is not a valid S3 "
                              "bucket name")
    # Two domains on one queue would each take the other's messages and
    # drop its recipients as belonging to another domain.
    if len(set(queues)) < len(queues):
        raise ConfigError("QUEUE_NAME_TEMPLATE",
                          "gives the same queue name for several domains; "
                          "use {domain} or {domain_dashed}")
