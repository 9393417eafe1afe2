"""Classify SQS message bodies into the notifications the worker handles.

Supported forms: an SNS envelope (unwrapped, then classified again), an
SES ``Received`` notification delivered raw or through SNS, and an S3
event.  S3 test events, SNS subscription confirmations and SES set-up
objects are recognised so that they can be acknowledged and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from email_worker.errors import PoisonMessageError
from email_worker.mail.addresses import normalise, unique_for_domain

SETUP_MARKER = "AMAZON_SES_SETUP_NOTIFICATION"
_MAX_SNS_DEPTH = 3


@dataclass(frozen=True)
class Notification:
    """The storage location and envelope of a received message.

    ``sender`` and ``recipients`` are None when the body carries no
    envelope (S3 events); the headers supply them later.  An empty sender
    is the null reverse-path of bounces.
    """

    kind: str
    bucket: str | None
    key: str
    sender: str | None
    recipients: tuple[str, ...] | None
    ses_message_id: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IgnoredNotification:
    """A body that needs no processing, such as an S3 test event."""

    reason: str


def classify(body: str, domain: str) -> Notification | IgnoredNotification:
    """Classify an SQS body received on ``domain``'s queue.

    Raises PoisonMessageError for anything that is not a known form.
    """
    try:
        document = json.loads(body)
    except (TypeError, ValueError, RecursionError) as exc:
        # json raises RecursionError, not ValueError, for deeply nested
        # arrays or objects.
        raise PoisonMessageError(f"body is not JSON: {exc}") from None
    return _classify_document(document, domain, depth=0)


def _classify_document(document: Any, domain: str,
                       depth: int) -> Notification | IgnoredNotification:
    if not isinstance(document, dict):
        raise PoisonMessageError("body is not a JSON object")
    if "Type" in document and "Message" in document:
        return _classify_sns(document, domain, depth)
    if document.get("Event") == "s3:TestEvent":
        return IgnoredNotification("s3 test event")
    records = document.get("Records")
    if isinstance(records, list) and records:
        return _classify_s3_event(records, domain)
    kind = document.get("notificationType") or document.get("eventType")
    if kind is not None:
        return _classify_ses(document, kind, domain)
    raise PoisonMessageError("body is not an SNS, SES or S3 notification")


def _classify_sns(document: dict[str, Any], domain: str,
                  depth: int) -> Notification | IgnoredNotification:
    sns_type = document.get("Type")
    if sns_type in ("SubscriptionConfirmation",
                    "UnsubscribeConfirmation"):
        return IgnoredNotification(f"sns {sns_type}")
    if depth >= _MAX_SNS_DEPTH:
        raise PoisonMessageError("SNS envelopes nested too deeply")
    message = document.get("Message")
    if not isinstance(message, str):
        raise PoisonMessageError("SNS Message is not a string")
    try:
        inner = json.loads(message)
    except (ValueError, RecursionError):
        if "Successfully validated" in message:
            return IgnoredNotification("ses topic validation")
        raise PoisonMessageError("SNS Message is not JSON") from None
    return _classify_document(inner, domain, depth + 1)


def _classify_ses(document: dict[str, Any], kind: Any,
                  domain: str) -> Notification | IgnoredNotification:
    if kind != "Received":
        raise PoisonMessageError(
            f"SES notification type {kind!r} is not 'Received'")
    mail = _object(document, "mail")
    receipt = _object(document, "receipt")
    action = receipt.get("action")
    if not isinstance(action, dict):
        raise PoisonMessageError("SES notification has no receipt action")
    key = action.get("objectKey")
    bucket = action.get("bucketName")
    if not isinstance(key, str) or not key:
        raise PoisonMessageError(
            "SES notification has no receipt.action.objectKey "
            f"(action type {action.get('type')!r})")
    if SETUP_MARKER in key:
        return IgnoredNotification("ses setup notification")
    recipients = receipt.get("recipients")
    if not isinstance(recipients, list):
        raise PoisonMessageError("SES notification has no recipients list")
    source = mail.get("source")
    return Notification(
        kind="ses",
        bucket=bucket if isinstance(bucket, str) and bucket else None,
        key=key,
        sender=normalise(source) if isinstance(source, str) else "",
        recipients=tuple(unique_for_domain(
            [r for r in recipients if isinstance(r, str)], domain)),
        ses_message_id=_optional_str(mail.get("messageId")),
        verdicts=_verdicts(receipt),
    )


def _verdicts(receipt: dict[str, Any]) -> dict[str, str]:
    """Return the spam and virus verdict statuses, upper-cased."""
    verdicts = {}
    for name in ("spam", "virus"):
        value = receipt.get(f"{name}Verdict")
        if isinstance(value, dict) and isinstance(value.get("status"), str):
            verdicts[name] = value["status"].upper()
    return verdicts


def _classify_s3_event(records: list[Any],
                       domain: str) -> Notification | IgnoredNotification:
    record = records[0]
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        raise PoisonMessageError("Records[0] is not an S3 event")
    if len(records) > 1:
        # S3 sends one record per event; more would need a split this
        # worker does not do, so refuse rather than drop the rest.
        raise PoisonMessageError(f"S3 event has {len(records)} records")
    s3 = _object(record, "s3")
    bucket = _object(s3, "bucket").get("name")
    raw_key = _object(s3, "object").get("key")
    if not isinstance(raw_key, str) or not raw_key:
        raise PoisonMessageError("S3 event has no object key")
    key = unquote_plus(raw_key)
    if SETUP_MARKER in key:
        return IgnoredNotification("ses setup notification")
    return Notification(
        kind="s3",
        bucket=bucket if isinstance(bucket, str) and bucket else None,
        key=key,
        sender=None,
        recipients=None,
        ses_message_id=key.rsplit("/", 1)[-1],
    )


def _object(document: dict[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    if not isinstance(value, dict):
        raise PoisonMessageError(f"notification has no {name!r} object")
    return value


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
