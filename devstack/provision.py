"""Create the queues, buckets and tables the worker expects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from devstack.aws_endpoint import CREDENTIALS, REGION

RULES_TABLE = "email-rules"
BLOCKED_TABLE = "email-blocked-senders"
MESSAGES_TABLE = "ses-outbound-messages"


def dashed(domain: str) -> str:
    return domain.replace(".", "-")


def queue_name(domain: str) -> str:
    return f"{dashed(domain)}-queue"


def bucket_name(domain: str) -> str:
    return f"{dashed(domain)}-emails"


@dataclass
class LocalAws:
    """boto3 clients for the local endpoint, with set-up helpers."""

    endpoint_url: str

    def __post_init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION)
        self.sqs: Any = session.client("sqs", endpoint_url=self.endpoint_url)
        self.s3: Any = session.client("s3", endpoint_url=self.endpoint_url)
        self.dynamodb: Any = session.client(
            "dynamodb", endpoint_url=self.endpoint_url)

    def create_domain(self, domain: str,
                      dead_letter_queue: bool = False) -> str:
        """Create the domain's bucket and queue; return the queue URL."""
        self.s3.create_bucket(Bucket=bucket_name(domain))
        attributes: dict[str, str] = {}
        if dead_letter_queue:
            dlq = self.sqs.create_queue(QueueName=f"{dashed(domain)}-dlq")
            arn = self.sqs.get_queue_attributes(
                QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
        response = self.sqs.create_queue(QueueName=queue_name(domain),
                                         Attributes=attributes)
        return str(response["QueueUrl"])

    def create_tables(self) -> None:
        for table, key in ((RULES_TABLE, "email_address"),
                           (BLOCKED_TABLE, "email_address"),
                           (MESSAGES_TABLE, "MessageId")):
            self.dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key,
                                       "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST")

    def block(self, address: str, *patterns: str) -> None:
        """Store blocklist patterns for an address or a whole domain."""
        self.dynamodb.put_item(TableName=BLOCKED_TABLE, Item={
            "email_address": {"S": address.lower()},
            "blocked_patterns": {"L": [{"S": p} for p in patterns]}})

    def queue_depth(self, queue_url: str) -> int:
        """Return visible plus in-flight messages of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return (int(attributes["ApproximateNumberOfMessages"])
                + int(attributes["ApproximateNumberOfMessagesNotVisible"]))
