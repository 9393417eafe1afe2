"""The bounce-tracking table and the out-of-office reply log."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from email_worker.aws.errors import AWS_EXCEPTIONS, wrap_aws_error

log = logging.getLogger(__name__)
_deserializer = TypeDeserializer()


class BounceStore:
    """Read the items the bounce-tracking Lambda writes, by SES ID.

    Without the table, bounce rewriting is off: that is logged once and
    ``available`` turns False, so that reports are delivered unchanged
    instead of waiting for an item that cannot appear.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self.available = True

    def find(self, message_id: str) -> dict[str, Any] | None:
        """Return the item for ``message_id``, or None when absent.

        The read is strongly consistent because the Lambda may have
        written the item moments before the DSN arrived.
        """
        try:
            response = self._client.get_item(
                TableName=self._table, ConsistentRead=True,
                Key={"MessageId": {"S": message_id}})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "ResourceNotFoundException":
                raise wrap_aws_error("dynamodb", "GetItem", exc) from exc
            if self.available:
                log.warning("table %s not found: SES bounce reports are "
                            "delivered without rewriting", self._table)
            self.available = False
            return None
        except AWS_EXCEPTIONS as exc:
            raise wrap_aws_error("dynamodb", "GetItem", exc) from exc
        self.available = True
        item = response.get("Item")
        if not item:
            return None
        return {k: _deserializer.deserialize(v) for k, v in item.items()}


def bounced_recipients(item: dict[str, Any]) -> list[str]:
    """Return the item's bouncedRecipients (SS or L) lower-cased."""
    value = item.get("bouncedRecipients") or []
    if isinstance(value, str):
        value = [value]
    return [str(v).strip().lower() for v in value if str(v).strip()]


class ReplyLog:
    """Record out-of-office replies so that each pair gets one per period.

    The record is a conditional PutItem, so of two workers that try to
    reply to the same (recipient, sender) pair at once only one succeeds.
    Without the table the record is kept in memory, per process, and
    that is logged once.
    """

    def __init__(self, client: Any, table: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()
        self._table_missing = False

    def claim(self, recipient: str, sender: str, period: float) -> bool:
        """Return True if no reply went to this pair within ``period`` s."""
        key = f"{recipient}|{sender}"
        now = self._clock()
        if not self._table_missing:
            try:
                return self._claim_in_table(key, now, period)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code != "ResourceNotFoundException":
                    raise wrap_aws_error("dynamodb", "PutItem", exc) \
                        from exc
                self._table_missing = True
                log.warning("table %s not found: out-of-office replies "
                            "are now limited per process, not across "
                            "workers", self._table)
            except AWS_EXCEPTIONS as exc:
                raise wrap_aws_error("dynamodb", "PutItem", exc) from exc
        return self._claim_in_memory(key, now, period)

    def _claim_in_table(self, key: str, now: float, period: float) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"reply_key": {"S": key},
                      "sent_at": {"N": str(int(now))},
                      "expiresAt": {"N": str(int(now + period))}},
                ConditionExpression=("attribute_not_exists(reply_key) "
                                     "OR sent_at < :cutoff"),
                ExpressionAttributeValues={
                    ":cutoff": {"N": str(int(now - period))}})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _claim_in_memory(self, key: str, now: float, period: float) -> bool:
        with self._lock:
            last = self._memory.get(key)
            if last is not None and last > now - period:
                return False
            self._memory[key] = now
            return True
