"""Store messages in S3 and announce them as SES would."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

from devstack.provision import LocalAws, bucket_name

_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


def ses_message_id() -> str:
    """Return a random 40-character id in SES's receiving format."""
    return "".join(secrets.choice(_BASE32HEX) for _ in range(40))


def ses_received(bucket: str, key: str, sender: str,
                 recipients: Iterable[str], message_id: str) -> dict[str, Any]:
    """Build an SES ``Received`` notification for an S3 action."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    recipients = list(recipients)
    return {
        "notificationType": "Received",
        "mail": {"timestamp": now, "source": sender,
                 "messageId": message_id, "destination": recipients,
                 "headersTruncated": False, "headers": [],
                 "commonHeaders": {}},
        "receipt": {
            "timestamp": now, "processingTimeMillis": 100,
            "recipients": recipients,
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {"type": "S3", "bucketName": bucket,
                       "objectKeyPrefix": "", "objectKey": key,
                       "topicArn": "arn:aws:sns:us-east-1:000000000000:"
                                   "ses-inbound"}},
    }


def sns_wrap(document: dict[str, Any]) -> dict[str, Any]:
    """Wrap a document in an SNS notification envelope."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:ses-inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(document),
        "Timestamp": datetime.now(timezone.utc).isoformat(),
        "SignatureVersion": "1",
        "Signature": "bG9jYWw=",
    }


def deliver_to_ses(aws: LocalAws, queue_url: str, domain: str,
                   raw: bytes, sender: str, recipients: Iterable[str],
                   wrap: bool = True, key: str | None = None) -> str:
    """Store ``raw`` in the domain bucket and queue its notification.

    Returns the object key.
    """
    message_id = ses_message_id()
    key = key or message_id
    bucket = bucket_name(domain)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=raw)
    document = ses_received(bucket, key, sender, recipients, message_id)
    body = sns_wrap(document) if wrap else document
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    return key
