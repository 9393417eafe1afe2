"""The rules and blocklist tables do not exist yet.

A missing table is temporary: messages wait, /health names DynamoDB as
the failing dependency, and once the tables are created every message
is delivered exactly once.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.faults.conftest import (Recorder, health_ok, recipient_counts,
                                   send_many, start_worker, tally)

pytestmark = pytest.mark.e2e

MESSAGES = 6
MISSING_SECONDS = 10.0


def create_table(stack: Stack, name: str) -> None:
    stack.aws.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "email_address", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "email_address",
                               "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")


def test_missing_tables_wait_then_deliver(stack: Stack,
                                          reliability: Recorder) -> None:
    rules = f"{stack.com}-rules".replace(".", "-")
    blocked = f"{stack.com}-blocked".replace(".", "-")
    sent = send_many(stack, MESSAGES)
    worker = start_worker(stack, DYNAMODB_RULES_TABLE=rules,
                          DYNAMODB_BLOCKED_TABLE=blocked)

    def failing() -> dict[str, object] | None:
        _status, body = worker.get_json("/health")
        return body["failing_dependencies"].get("dynamodb")
    dependency = wait_until(failing, 30, "DynamoDB among the failing "
                            "dependencies", worker=worker)
    time.sleep(MISSING_SECONDS)
    delivered_meanwhile = sum(recipient_counts(stack).values())
    waiting = sum(stack.depth(d) for d in stack.domains)
    create_table(stack, rules)
    create_table(stack, blocked)
    stack.wait_received(MESSAGES, timeout=120)
    stack.wait_drained(timeout=60)
    wait_until(lambda: not failing(), 30, "the dependency to recover",
               worker=worker)
    result = tally(stack, sent)
    reliability.record(
        "DynamoDB tables missing, created 10 s later",
        "messages wait, /health names dynamodb, all delivered once after",
        messages=MESSAGES, lost=len(result.lost),
        duplicated=result.duplicate_copies, parked=0,
        health_error=str(dependency["error"])[:60])

    assert delivered_meanwhile == 0
    assert waiting == MESSAGES
    assert "ResourceNotFoundException" in str(dependency["error"])
    assert result.lost == []
    assert result.duplicated == {}
    assert health_ok(worker)
