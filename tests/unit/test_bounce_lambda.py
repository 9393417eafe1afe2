"""The bounce-tracking Lambda adds SES bounces to DynamoDB, never
replacing recipients stored earlier."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import pytest

from bounce_lambda import handler as bounce_handler
from devstack.aws_endpoint import MotoServer, client_environment
from devstack.provision import MESSAGES_TABLE, LocalAws
from tests.unit.support import shared_file

FIXTURE_ID = "01000199e9cb0eb5-3f16947c-cf25-ec84-d8db-c74254770f58-000000"
CALLER_ID = "<c0ffee42-1b2c-4d5e-8f90-abcdef123456@mail.example.com>"


@pytest.fixture(scope="module")
def aws():
    with MotoServer() as server:
        local = LocalAws(server.url)
        local.create_tables()
        yield local


@pytest.fixture(autouse=True)
def lambda_environment(aws, monkeypatch):
    """Point the handler's own boto3 client at moto."""
    for name, value in client_environment(aws.endpoint_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DYNAMODB_MESSAGES_TABLE", raising=False)
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    monkeypatch.setattr(bounce_handler, "_client", None)


def fixture_notification() -> dict[str, Any]:
    path = shared_file("fixtures", "ses_bounce_notification.json")
    return json.loads(path.read_text())


def notification(message_id: str, *recipients: str,
                 kind_key: str = "notificationType") -> dict[str, Any]:
    """Return the fixture notification for other IDs and recipients."""
    document = copy.deepcopy(fixture_notification())
    if kind_key != "notificationType":
        document[kind_key] = document.pop("notificationType")
    document["mail"]["messageId"] = message_id
    document["bounce"]["bouncedRecipients"] = [
        {"emailAddress": address, "action": "failed", "status": "5.1.1"}
        for address in recipients]
    return document


def sns_event(*messages: Any) -> dict[str, Any]:
    """Wrap each message as the Sns record of a Lambda event."""
    records = []
    for message in messages:
        text = message if isinstance(message, str) else json.dumps(message)
        records.append({"EventSource": "aws:sns", "Sns": {
            "Type": "Notification", "Message": text}})
    return {"Records": records}


def stored(aws, message_id: str,
           table: str = MESSAGES_TABLE) -> dict[str, Any] | None:
    return aws.dynamodb.get_item(
        TableName=table, ConsistentRead=True,
        Key={"MessageId": {"S": message_id}}).get("Item")


def recipients_of(aws, message_id: str) -> set[str]:
    return set(stored(aws, message_id)["bouncedRecipients"]["SS"])


def new_id() -> str:
    return f"0100{uuid.uuid4().hex[:12]}-test-000000"


def test_lambda_fixture_stored_under_ses_id(aws):
    bounce_handler.handler(sns_event(fixture_notification()))
    assert recipients_of(aws, FIXTURE_ID) == {"nobody@example.net"}


def test_lambda_fixture_not_stored_under_caller_id(aws):
    bounce_handler.handler(sns_event(fixture_notification()))
    assert stored(aws, CALLER_ID) is None


def test_lambda_fixture_attributes(aws):
    bounce_handler.handler(sns_event(fixture_notification()))
    item = stored(aws, FIXTURE_ID)
    assert item["source"] == {"S": "alice@example.com"}
    assert item["bounceType"] == {"S": "Permanent"}
    assert item["bounceSubType"] == {"S": "General"}
    assert item["timestamp"] == {"S": "2025-03-14T10:02:12.734Z"}


def test_lambda_expiry_default_thirty_days(aws):
    before = int(time.time())
    bounce_handler.handler(sns_event(fixture_notification()))
    expires = int(stored(aws, FIXTURE_ID)["expiresAt"]["N"])
    assert before + 30 * 86_400 <= expires <= int(time.time()) + 30 * 86_400


def test_lambda_expiry_from_retention_days(aws, monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "2")
    message_id = new_id()
    before = int(time.time())
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "a@example.net")))
    expires = int(stored(aws, message_id)["expiresAt"]["N"])
    assert before + 2 * 86_400 <= expires <= int(time.time()) + 2 * 86_400


def test_lambda_returns_counts(aws):
    counts = bounce_handler.handler(sns_event(fixture_notification()))
    assert counts == {"stored": 1, "skipped": 0}


def test_lambda_two_notifications_accumulate(aws):
    message_id = new_id()
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "nobody@example.net")))
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "carol@example.net")))
    assert recipients_of(aws, message_id) == {"nobody@example.net",
                                              "carol@example.net"}


def test_lambda_one_event_two_records(aws):
    message_id = new_id()
    bounce_handler.handler(sns_event(
        notification(message_id, "nobody@example.net"),
        notification(message_id, "carol@example.net")))
    assert recipients_of(aws, message_id) == {"nobody@example.net",
                                              "carol@example.net"}


def test_lambda_repeated_notification_stored_once(aws):
    message_id = new_id()
    event = sns_event(notification(message_id, "nobody@example.net"))
    bounce_handler.handler(event)
    bounce_handler.handler(event)
    assert recipients_of(aws, message_id) == {"nobody@example.net"}


def test_lambda_recipients_lower_cased(aws):
    message_id = new_id()
    bounce_handler.handler(sns_event(notification(
        message_id, "Frank@Example.NET", "frank@example.net")))
    assert recipients_of(aws, message_id) == {"frank@example.net"}


def test_lambda_event_type_key_accepted(aws):
    message_id = new_id()
    bounce_handler.handler(sns_event(notification(
        message_id, "a@example.net", kind_key="eventType")))
    assert recipients_of(aws, message_id) == {"a@example.net"}


def test_lambda_converts_old_list_item(aws):
    message_id = new_id()
    aws.dynamodb.put_item(TableName=MESSAGES_TABLE, Item={
        "MessageId": {"S": message_id},
        "bouncedRecipients": {"L": [{"S": "Old@Example.NET"}]}})
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "new@example.net")))
    assert recipients_of(aws, message_id) == {"old@example.net",
                                              "new@example.net"}


def test_lambda_converts_empty_old_list_item(aws):
    message_id = new_id()
    aws.dynamodb.put_item(TableName=MESSAGES_TABLE, Item={
        "MessageId": {"S": message_id}, "bouncedRecipients": {"L": []}})
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "new@example.net")))
    assert recipients_of(aws, message_id) == {"new@example.net"}


def test_lambda_table_from_environment(aws, monkeypatch):
    aws.dynamodb.create_table(
        TableName="other-outbound",
        KeySchema=[{"AttributeName": "MessageId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "MessageId",
                               "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    monkeypatch.setenv("DYNAMODB_MESSAGES_TABLE", "other-outbound")
    message_id = new_id()
    bounce_handler.handler(sns_event(notification(message_id,
                                                  "a@example.net")))
    assert stored(aws, message_id, "other-outbound") is not None
    assert stored(aws, message_id) is None


@pytest.mark.parametrize("message", [
    "Successfully validated SNS topic for Amazon SES event publishing.",
    json.dumps({"notificationType": "Complaint", "complaint": {},
                "mail": {"messageId": "x"}}),
    json.dumps({"notificationType": "Delivery", "mail": {"messageId": "x"}}),
    json.dumps({"notificationType": "Bounce", "mail": {},
                "bounce": {"bouncedRecipients": [
                    {"emailAddress": "a@example.net"}]}}),
    json.dumps({"notificationType": "Bounce", "mail": {"messageId": "x"},
                "bounce": {"bouncedRecipients": []}}),
    json.dumps(["not", "an", "object"]),
])
def test_lambda_skips_other_messages(aws, message):
    counts = bounce_handler.handler(sns_event(message))
    assert counts == {"stored": 0, "skipped": 1}


def test_lambda_record_without_sns_skipped(aws):
    counts = bounce_handler.handler({"Records": [{"EventSource": "aws:sqs"}]})
    assert counts == {"stored": 0, "skipped": 1}


def test_lambda_skipped_record_others_stored(aws):
    message_id = new_id()
    counts = bounce_handler.handler(sns_event(
        "not json", notification(message_id, "a@example.net")))
    assert counts == {"stored": 1, "skipped": 1}
    assert recipients_of(aws, message_id) == {"a@example.net"}
