"""Builders and stubs shared by the unit tests."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from email_worker.aws.dynamodb import RecipientRules
from email_worker.aws.s3 import StoredObject
from email_worker.config import Settings
from email_worker.logs import MessageLogger
from email_worker.mail.headers import parse_headers
from email_worker.mail.notification import Notification
from email_worker.metrics.registry import WorkerMetrics
from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services
from tests.conftest import shared_dir

DOMAIN = "example.com"
BUCKET = "example-com-emails"
KEY = "inbound/0vfh5uual2mmckaeivd120n0eiatleuo9k79p8g1"


def shared_file(*parts: str) -> Path:
    """Return a file from the shared test data, or skip the test."""
    path = shared_dir().joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"test data not found: {path}")
    return path


def corpus_params() -> list[Any]:
    """Return one pytest.param per real-mail corpus message.

    Without the corpus the list contains one skipped parameter, so
    the report names the missing folder instead of collecting nothing.
    """
    root = shared_dir() / "corpus"
    files = sorted(root.glob("*/*.eml")) if root.is_dir() else []
    if not files:
        reason = f"real-mail corpus not found under {root}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(path, id=f"{path.parent.name}/{path.name}")
            for path in files]


def client_error(code: str, operation: str,
                 message: str = "stubbed failure") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}},
                       operation)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"domains": (DOMAIN,),
                              "worker_name": "worker-test"}
    values.update(overrides)
    return Settings(**values)


class RecordingStore:
    """Stand-in for MessageStore that records metadata writes and deletes."""

    def __init__(self, stored: StoredObject | None = None) -> None:
        self.stored = stored
        self.replaced: list[dict[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.calls: list[str] = []

    def fetch(self, bucket: str, key: str) -> StoredObject:
        self.calls.append("fetch")
        assert self.stored is not None, "no stored object configured"
        return self.stored

    def replace_metadata(self, stored: StoredObject,
                         metadata: dict[str, str]) -> None:
        self.calls.append("replace_metadata")
        self.replaced.append(dict(metadata))
        stored.metadata = dict(metadata)

    def delete(self, bucket: str, key: str) -> None:
        self.calls.append("delete")
        self.deleted.append((bucket, key))


def make_services(store: Any = None, rules: Any = None, smtp: Any = None,
                  **settings: Any) -> Services:
    """Build Services from stubs. Clients not passed in stay None."""
    return Services(settings=make_settings(**settings),
                    store=store if store is not None else RecordingStore(),
                    rules=rules, smtp=smtp, metrics=WorkerMetrics(),
                    internal_smtp=None, bounces=None, reply_log=None)


def stored_object(body: bytes = b"Subject: hi\r\n\r\nbody\r\n",
                  metadata: dict[str, str] | None = None) -> StoredObject:
    return StoredObject(bucket=BUCKET, key=KEY, body=body,
                        metadata=dict(metadata or {}), etag='"etag-1"',
                        settings={"ContentType": "message/rfc822"})


def make_context(recipients: list[str] | None = None,
                 sender: str = "dave@example.net",
                 body: bytes = b"From: dave@example.net\r\n\r\nhi\r\n",
                 rules: RecipientRules | None = None,
                 stored: StoredObject | None = None) -> MessageContext:
    """Build a context in the state the envelope step leaves it."""
    recipients = list(recipients if recipients is not None
                      else ["alice@example.com"])
    notification = Notification(kind="ses", bucket=BUCKET, key=KEY,
                                sender=sender,
                                recipients=tuple(recipients))
    log = MessageLogger(logging.getLogger("tests.unit"), "msg-1", DOMAIN)
    return MessageContext(domain=DOMAIN, notification=notification,
                          bucket=BUCKET, log=log, stored=stored, body=body,
                          headers=parse_headers(body), sender=sender,
                          recipients=recipients,
                          rules=rules or RecipientRules())
