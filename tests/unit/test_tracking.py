"""Bounce items and the reply log, against moto in server mode."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from devstack.aws_endpoint import MotoServer
from devstack.provision import MESSAGES_TABLE, LocalAws
from email_worker.aws.tracking import BounceStore, ReplyLog, \
    bounced_recipients
from email_worker.errors import TemporaryAwsError
from tests.unit.support import client_error

REPLY_TABLE = "email-autoreply-log"
DAY = 86_400.0
ALICE = "alice@example.com"


class Clock:
    """A settable clock, in epoch seconds."""

    def __init__(self, now: float = 1_741_946_400.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingClient:
    """Pass calls to a real client and record their keyword arguments."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def record(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)
        return record


class FailingClient:
    """A DynamoDB stand-in whose put_item and get_item always fail."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    def put_item(self, **kwargs: Any) -> None:
        self.calls += 1
        raise client_error(self.code, "PutItem")

    def get_item(self, **kwargs: Any) -> None:
        self.calls += 1
        raise client_error(self.code, "GetItem")


@pytest.fixture(scope="module")
def aws():
    with MotoServer() as server:
        local = LocalAws(server.url)
        local.create_tables()
        local.dynamodb.create_table(
            TableName=REPLY_TABLE,
            KeySchema=[{"AttributeName": "reply_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "reply_key",
                                   "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
        yield local


@pytest.fixture
def sender() -> str:
    """A sender address no other test uses, so reply keys never clash."""
    return f"dave-{uuid.uuid4().hex[:12]}@example.net"


def put_bounce(aws, message_id: str, recipients: dict[str, Any]) -> None:
    aws.dynamodb.put_item(TableName=MESSAGES_TABLE, Item={
        "MessageId": {"S": message_id},
        "bouncedRecipients": recipients,
        "bounceType": {"S": "Permanent"}})


# -- BounceStore ----------------------------------------------------------


def test_bounce_store_missing_item_is_none(aws):
    store = BounceStore(aws.dynamodb, MESSAGES_TABLE)
    assert store.find(f"missing-{uuid.uuid4()}") is None


def test_bounce_store_string_set_item(aws):
    message_id = f"ss-{uuid.uuid4()}"
    put_bounce(aws, message_id, {"SS": ["nobody@example.net"]})
    item = BounceStore(aws.dynamodb, MESSAGES_TABLE).find(message_id)
    assert item["bouncedRecipients"] == {"nobody@example.net"}
    assert item["bounceType"] == "Permanent"


def test_bounce_store_list_item(aws):
    message_id = f"list-{uuid.uuid4()}"
    put_bounce(aws, message_id, {"L": [{"S": "Frank@Example.NET"}]})
    item = BounceStore(aws.dynamodb, MESSAGES_TABLE).find(message_id)
    assert bounced_recipients(item) == ["frank@example.net"]


def test_bounce_store_consistent_read(aws):
    client = RecordingClient(aws.dynamodb)
    BounceStore(client, MESSAGES_TABLE).find("any-id")
    name, kwargs = client.calls[0]
    assert name == "get_item"
    assert kwargs["ConsistentRead"] is True
    assert kwargs["Key"] == {"MessageId": {"S": "any-id"}}


def test_bounce_store_missing_table_finds_nothing(aws):
    store = BounceStore(aws.dynamodb, "no-such-table")
    assert store.find("any-id") is None


def test_bounce_store_missing_table_unavailable(aws):
    store = BounceStore(aws.dynamodb, "no-such-table")
    store.find("any-id")
    assert store.available is False


# -- bounced_recipients ---------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ({"a@example.net"}, ["a@example.net"]),
    (["B@Example.NET", " c@example.net "], ["b@example.net",
                                            "c@example.net"]),
    ("D@example.net", ["d@example.net"]),
    (["", "  "], []),
    (None, []),
])
def test_bounced_recipients_forms(value, expected):
    assert bounced_recipients({"bouncedRecipients": value}) == expected


def test_bounced_recipients_attribute_missing():
    assert bounced_recipients({"MessageId": "x"}) == []


# -- ReplyLog -------------------------------------------------------------


def test_reply_log_first_claim_wins(aws, sender):
    log = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=Clock())
    assert log.claim(ALICE, sender, 7 * DAY) is True


def test_reply_log_second_claim_within_period_loses(aws, sender):
    clock = Clock()
    log = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=clock)
    log.claim(ALICE, sender, 7 * DAY)
    clock.now += 6 * DAY
    assert log.claim(ALICE, sender, 7 * DAY) is False


def test_reply_log_claim_after_period_wins(aws, sender):
    clock = Clock()
    log = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=clock)
    log.claim(ALICE, sender, 7 * DAY)
    clock.now += 7 * DAY + 1
    assert log.claim(ALICE, sender, 7 * DAY) is True


def test_reply_log_pairs_independent(aws, sender):
    log = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=Clock())
    log.claim(ALICE, sender, DAY)
    assert log.claim("bob@example.com", sender, DAY) is True


def test_reply_log_shared_table_second_instance_loses(aws, sender):
    clock = Clock()
    first = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=clock)
    second = ReplyLog(aws.dynamodb, REPLY_TABLE, clock=clock)
    assert first.claim(ALICE, sender, DAY) is True
    assert second.claim(ALICE, sender, DAY) is False


def test_reply_log_item_attributes(aws, sender):
    clock = Clock(1_741_946_400.0)
    ReplyLog(aws.dynamodb, REPLY_TABLE, clock=clock).claim(ALICE, sender,
                                                           DAY)
    item = aws.dynamodb.get_item(
        TableName=REPLY_TABLE, ConsistentRead=True,
        Key={"reply_key": {"S": f"{ALICE}|{sender}"}})["Item"]
    assert item["sent_at"] == {"N": "1741946400"}
    assert item["expiresAt"] == {"N": "1742032800"}


def test_reply_log_missing_table_uses_memory(aws, sender):
    log = ReplyLog(aws.dynamodb, "no-such-reply-table", clock=Clock())
    assert log.claim(ALICE, sender, DAY) is True
    assert log.claim(ALICE, sender, DAY) is False


def test_reply_log_missing_table_warns_once(aws, sender, caplog):
    log = ReplyLog(aws.dynamodb, "no-such-reply-table", clock=Clock())
    with caplog.at_level(logging.WARNING, "email_worker.aws.tracking"):
        log.claim(ALICE, sender, DAY)
        log.claim(ALICE, sender, DAY)
        log.claim("bob@example.com", sender, DAY)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no-such-reply-table" in warnings[0].getMessage()


def test_reply_log_missing_table_not_asked_again():
    client = FailingClient("ResourceNotFoundException")
    log = ReplyLog(client, REPLY_TABLE, clock=Clock())
    log.claim(ALICE, "dave@example.net", DAY)
    log.claim(ALICE, "erin@example.net", DAY)
    assert client.calls == 1


def test_reply_log_memory_expires_after_period():
    clock = Clock()
    log = ReplyLog(FailingClient("ResourceNotFoundException"), REPLY_TABLE,
                   clock=clock)
    log.claim(ALICE, "dave@example.net", DAY)
    clock.now += DAY + 1
    assert log.claim(ALICE, "dave@example.net", DAY) is True


@pytest.mark.parametrize("code", ["AccessDeniedException",
                                  "ProvisionedThroughputExceededException"])
def test_reply_log_other_errors_raise(code):
    log = ReplyLog(FailingClient(code), REPLY_TABLE, clock=Clock())
    with pytest.raises(TemporaryAwsError) as raised:
        log.claim(ALICE, "dave@example.net", DAY)
    assert raised.value.code == code


def test_reply_log_other_errors_keep_using_table():
    client = FailingClient("AccessDeniedException")
    log = ReplyLog(client, REPLY_TABLE, clock=Clock())
    for _attempt in range(2):
        with pytest.raises(TemporaryAwsError):
            log.claim(ALICE, "dave@example.net", DAY)
    assert client.calls == 2
