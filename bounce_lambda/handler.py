"""AWS Lambda handler that records SES bounces for the worker.

Subscribe it to the SNS topic that receives the SES bounce notifications
of the sending identities.  For each bounce it adds the bounced
recipients to the ``ses-outbound-messages`` item keyed by the SES message
ID.  It adds (ADD on a string set) instead of overwriting, because SES
may send one notification per recipient for the same message.

Environment: ``DYNAMODB_MESSAGES_TABLE`` (default ses-outbound-messages),
``RETENTION_DAYS`` (default 30, sets the ``expiresAt`` TTL attribute).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import boto3

log = logging.getLogger()
log.setLevel(logging.INFO)

_client: Any = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    """Store every bounce in the event; return counts of what was done."""
    table = os.environ.get("DYNAMODB_MESSAGES_TABLE", "ses-outbound-messages")
    retention = int(os.environ.get("RETENTION_DAYS", "30")) * 86_400
    counts = {"stored": 0, "skipped": 0}
    for record in event.get("Records", []):
        notification = _notification(record)
        bounce = _bounce(notification)
        if bounce is None:
            counts["skipped"] += 1
            continue
        store_bounce(_dynamodb(), table, bounce, retention)
        counts["stored"] += 1
    return counts


def _dynamodb() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("dynamodb")
    return _client


def _notification(record: dict[str, Any]) -> dict[str, Any] | None:
    sns = record.get("Sns") or {}
    message = sns.get("Message")
    if not isinstance(message, str):
        return None
    try:
        document = json.loads(message)
    except ValueError:
        log.warning("skipped an SNS message that is not JSON: %.200s",
                    message)
        return None
    return document if isinstance(document, dict) else None


def _bounce(notification: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the fields to store, or None for anything but a bounce."""
    if not notification:
        return None
    kind = notification.get("notificationType") or notification.get(
        "eventType")
    if kind != "Bounce":
        return None
    mail = notification.get("mail") or {}
    bounce = notification.get("bounce") or {}
    message_id = mail.get("messageId")
    recipients = [str(r.get("emailAddress", "")).strip().lower()
                  for r in bounce.get("bouncedRecipients", [])
                  if isinstance(r, dict) and r.get("emailAddress")]
    if not message_id or not recipients:
        return None
    return {
        "message_id": message_id,
        "recipients": recipients,
        "source": str(mail.get("source", "")),
        "bounce_type": str(bounce.get("bounceType", "")),
        "bounce_sub_type": str(bounce.get("bounceSubType", "")),
        "timestamp": str(bounce.get("timestamp", "")),
    }


def store_bounce(client: Any, table: str, bounce: dict[str, Any],
                 retention_seconds: int) -> None:
    """Add the recipients to the item and set its other attributes.

    ``source``, ``timestamp`` and other names are aliased because many
    attribute names are DynamoDB reserved words.  An item written by an
    older tracker may hold the recipients as a list (L), which ADD
    rejects; that item is converted to a string set.
    """
    try:
        _add_recipients(client, table, bounce, retention_seconds)
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        _convert_list_to_set(client, table, bounce["message_id"])
        _add_recipients(client, table, bounce, retention_seconds)
    log.info("stored bounce of %s for %s", bounce["message_id"],
             ",".join(bounce["recipients"]))


def _convert_list_to_set(client: Any, table: str, message_id: str) -> None:
    item = client.get_item(TableName=table, ConsistentRead=True,
                           Key={"MessageId": {"S": message_id}}).get("Item")
    old = (item or {}).get("bouncedRecipients", {}).get("L")
    if old is None:
        raise ValueError(f"item {message_id}: bouncedRecipients is neither "
                         "a string set nor a list")
    addresses = sorted({v["S"].lower() for v in old if "S" in v})
    client.update_item(
        TableName=table, Key={"MessageId": {"S": message_id}},
        UpdateExpression="SET #recipients = :set" if addresses
        else "REMOVE #recipients",
        ExpressionAttributeNames={"#recipients": "bouncedRecipients"},
        **({"ExpressionAttributeValues": {":set": {"SS": addresses}}}
           if addresses else {}))


def _add_recipients(client: Any, table: str, bounce: dict[str, Any],
                    retention_seconds: int) -> None:
    client.update_item(
        TableName=table,
        Key={"MessageId": {"S": bounce["message_id"]}},
        UpdateExpression=("ADD #recipients :recipients "
                          "SET #source = :source, #type = :type, "
                          "#subtype = :subtype, #timestamp = :timestamp, "
                          "#expires = :expires"),
        ExpressionAttributeNames={
            "#recipients": "bouncedRecipients", "#source": "source",
            "#type": "bounceType", "#subtype": "bounceSubType",
            "#timestamp": "timestamp", "#expires": "expiresAt"},
        ExpressionAttributeValues={
            ":recipients": {"SS": sorted(set(bounce["recipients"]))},
            ":source": {"S": bounce["source"]},
            ":type": {"S": bounce["bounce_type"]},
            ":subtype": {"S": bounce["bounce_sub_type"]},
            ":timestamp": {"S": bounce["timestamp"]},
            ":expires": {"N": str(int(time.time()) + retention_seconds)}})
