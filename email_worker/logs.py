"""Logging set-up: text or JSON lines, message id and domain first."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, MutableMapping

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs every retry at DEBUG; keep it to warnings unless the
    # operator asks for DEBUG.
    if level != "DEBUG":
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(
                record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
        }
        for name in ("message_id", "domain", "event"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class MessageLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefix every line with the message id and the domain."""

    def __init__(self, logger: logging.Logger, message_id: str,
                 domain: str) -> None:
        # An S3 key from an event may hold control characters; they must
        # not break the log line.
        printable = re.sub(r"[\x00-\x1f\x7f]", "?", message_id)
        super().__init__(logger, {"message_id": printable,
                                  "domain": domain})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"{extra['message_id']} {extra['domain']}: {msg}", kwargs
