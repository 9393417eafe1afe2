"""JSON log lines carry the timestamp, level, message id, domain and event."""

from __future__ import annotations

import json
import logging

from email_worker.logs import JsonFormatter, MessageLogger


def _format(logger_call) -> dict:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.json")
    logger.handlers[:] = [Collect()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger_call(MessageLogger(logger, "msg-1", "example.com"))
    return json.loads(JsonFormatter().format(records[0]))


def test_json_line_fields():
    entry = _format(lambda log: log.info("finished with status %s",
                                         "delivered",
                                         extra={"event": "delivered"}))
    assert entry["message_id"] == "msg-1"
    assert entry["domain"] == "example.com"
    assert entry["event"] == "delivered"
    assert entry["level"] == "INFO"
    assert entry["timestamp"].endswith("+00:00")


def test_json_line_message_starts_with_id():
    entry = _format(lambda log: log.info("hello"))
    assert entry["message"] == "msg-1 example.com: hello"


def test_json_line_without_event():
    entry = _format(lambda log: log.info("x"))
    assert "event" not in entry


def test_message_id_control_characters_replaced():
    logger = MessageLogger(logging.getLogger("t"), "a\x00b\nc", "d")
    assert logger.extra["message_id"] == "a?b?c"
