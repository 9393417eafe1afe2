"""One domain's SQS queue: receive, delete and change visibility."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from email_worker.aws.errors import call_aws

BATCH_LIMIT = 10


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


class DomainQueue:
    """Wrap the SQS calls for one queue URL; errors become AwsError."""

    def __init__(self, client: Any, queue_name: str) -> None:
        self._client = client
        self.queue_name = queue_name
        self.url: str | None = None

    def resolve(self) -> str:
        """Look up and remember the queue URL."""
        response = call_aws("sqs", "GetQueueUrl",
                            self._client.get_queue_url,
                            QueueName=self.queue_name)
        self.url = response["QueueUrl"]
        return self.url

    def receive(self, max_messages: int, wait_seconds: int,
                visibility_timeout: int) -> list[ReceivedMessage]:
        response = call_aws(
            "sqs", "ReceiveMessage", self._client.receive_message,
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(BATCH_LIMIT, max_messages)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [_received(raw) for raw in response.get("Messages", [])]

    def delete(self, handles: Sequence[str]) -> list[str]:
        """Delete messages in batches; return the handles that failed."""
        failed: list[str] = []
        for chunk in _chunks(handles):
            entries = [{"Id": str(i), "ReceiptHandle": handle}
                       for i, handle in enumerate(chunk)]
            response = call_aws("sqs", "DeleteMessageBatch",
                                self._client.delete_message_batch,
                                QueueUrl=self.url, Entries=entries)
            failed += [chunk[int(f["Id"])]
                       for f in response.get("Failed", [])]
        return failed

    def change_visibility(self, handles: Sequence[str],
                          seconds: int) -> list[str]:
        """Set the visibility of messages; return the handles that failed."""
        failed: list[str] = []
        for chunk in _chunks(handles):
            entries = [{"Id": str(i), "ReceiptHandle": handle,
                        "VisibilityTimeout": seconds}
                       for i, handle in enumerate(chunk)]
            response = call_aws(
                "sqs", "ChangeMessageVisibilityBatch",
                self._client.change_message_visibility_batch,
                QueueUrl=self.url, Entries=entries)
            failed += [chunk[int(f["Id"])]
                       for f in response.get("Failed", [])]
        return failed

    def attributes(self) -> dict[str, str]:
        response = call_aws(
            "sqs", "GetQueueAttributes", self._client.get_queue_attributes,
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "RedrivePolicy"])
        return response.get("Attributes", {})

    @staticmethod
    def redrive_target(attributes: dict[str, str]) -> str | None:
        """Return the dead-letter queue ARN of a RedrivePolicy, if any."""
        policy = attributes.get("RedrivePolicy")
        if not policy:
            return None
        try:
            target = json.loads(policy).get("deadLetterTargetArn")
        except (ValueError, AttributeError):
            return None
        return target if isinstance(target, str) and target else None


def _received(raw: dict[str, Any]) -> ReceivedMessage:
    attributes = raw.get("Attributes", {})
    return ReceivedMessage(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), BATCH_LIMIT):
        yield items[start:start + BATCH_LIMIT]
