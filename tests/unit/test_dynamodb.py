"""Rules and blocklists are read with batched, de-duplicated keys."""

from __future__ import annotations

import pytest

from email_worker.aws.dynamodb import RecipientRules, RulesStore
from email_worker.errors import TemporaryAwsError
from tests.unit.support import client_error

RULES = "email-rules"
BLOCKED = "email-blocked-senders"


class StubDynamoDb:
    """Return batch_get_item results from in-memory tables of typed items."""

    def __init__(self, tables=None, unprocessed_rounds=0, error=None):
        self.tables = tables or {RULES: {}, BLOCKED: {}}
        self.requests = []
        self.unprocessed_rounds = unprocessed_rounds
        self.error = error

    def batch_get_item(self, RequestItems):  # noqa: N803 - boto3 name
        self.requests.append(RequestItems)
        if self.error is not None:
            raise self.error
        if self.unprocessed_rounds:
            self.unprocessed_rounds -= 1
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        responses = {}
        for table, entry in RequestItems.items():
            for key in entry["Keys"]:
                item = self.tables[table].get(key["email_address"]["S"])
                if item is not None:
                    responses.setdefault(table, []).append(item)
        return {"Responses": responses, "UnprocessedKeys": {}}


def requested_keys(request, table):
    return [key["email_address"]["S"]
            for key in request.get(table, {}).get("Keys", [])]


def blocked_item(address, patterns, form="L"):
    if form == "SS":
        value = {"SS": patterns}
    else:
        value = {"L": [{"S": p} for p in patterns]}
    return {"email_address": {"S": address}, "blocked_patterns": value}


def make_store(client, sleeps=None):
    sleep = sleeps.append if sleeps is not None else _no_sleep
    return RulesStore(client, RULES, BLOCKED, sleep=sleep)


def _no_sleep(seconds):
    raise AssertionError(f"unexpected sleep of {seconds} s")


def test_lookup_single_call_for_both_tables():
    client = StubDynamoDb()
    make_store(client).lookup(["alice@example.com", "bob@example.com"])
    assert len(client.requests) == 1
    assert set(client.requests[0]) == {RULES, BLOCKED}


def test_lookup_rules_keys_are_recipients():
    client = StubDynamoDb()
    make_store(client).lookup(["alice@example.com", "bob@example.com"])
    assert requested_keys(client.requests[0], RULES) == \
        ["alice@example.com", "bob@example.com"]


def test_lookup_blocklist_keys_add_domain():
    client = StubDynamoDb()
    make_store(client).lookup(["alice@example.com", "bob@example.com"])
    assert requested_keys(client.requests[0], BLOCKED) == \
        ["alice@example.com", "bob@example.com", "example.com"]


def test_lookup_blocklist_keys_one_domain_each():
    client = StubDynamoDb()
    make_store(client).lookup(["a@example.com", "b@example.org",
                               "c@example.com"])
    assert requested_keys(client.requests[0], BLOCKED)[3:] == \
        ["example.com", "example.org"]


def test_lookup_duplicate_recipients_requested_once():
    client = StubDynamoDb()
    make_store(client).lookup(["alice@example.com", "alice@example.com"])
    assert requested_keys(client.requests[0], RULES) == ["alice@example.com"]
    assert requested_keys(client.requests[0], BLOCKED) == \
        ["alice@example.com", "example.com"]


def test_lookup_chunks_at_100_keys():
    recipients = [f"user{i:03d}@example.com" for i in range(60)]
    client = StubDynamoDb()
    make_store(client).lookup(recipients)
    # 60 rules keys + 60 blocklist keys + 1 domain key = 121 keys.
    sizes = [sum(len(entry["Keys"]) for entry in request.values())
             for request in client.requests]
    assert sizes == [100, 21]


def test_lookup_chunk_spans_both_tables():
    recipients = [f"user{i:03d}@example.com" for i in range(60)]
    client = StubDynamoDb()
    make_store(client).lookup(recipients)
    first = client.requests[0]
    assert len(requested_keys(first, RULES)) == 60
    assert len(requested_keys(first, BLOCKED)) == 40


def test_lookup_no_key_requested_twice():
    recipients = [f"user{i:03d}@example.com" for i in range(150)]
    client = StubDynamoDb()
    make_store(client).lookup(recipients + recipients[:10])
    for table in (RULES, BLOCKED):
        keys = [key for request in client.requests
                for key in requested_keys(request, table)]
        assert len(keys) == len(set(keys))


def test_lookup_no_empty_key_lists():
    recipients = [f"user{i:03d}@example.com" for i in range(100)]
    client = StubDynamoDb()
    make_store(client).lookup(recipients)
    for request in client.requests:
        for entry in request.values():
            assert entry["Keys"]


def test_lookup_empty_recipients_makes_no_call():
    client = StubDynamoDb()
    make_store(client).lookup([])
    assert client.requests == []


def test_lookup_unprocessed_keys_retried():
    client = StubDynamoDb(unprocessed_rounds=2)
    client.tables[RULES]["alice@example.com"] = {
        "email_address": {"S": "alice@example.com"},
        "ooo_active": {"BOOL": True}}
    sleeps = []
    result = make_store(client, sleeps).lookup(["alice@example.com"])
    assert result.rules["alice@example.com"]["ooo_active"] is True
    assert len(client.requests) == 3


def test_lookup_unprocessed_keys_sleep_injected():
    client = StubDynamoDb(unprocessed_rounds=2)
    sleeps = []
    make_store(client, sleeps).lookup(["alice@example.com"])
    assert len(sleeps) == 2
    assert all(0 <= seconds <= 2.0 for seconds in sleeps)


def test_lookup_unprocessed_keys_resubmitted_unchanged():
    client = StubDynamoDb(unprocessed_rounds=1)
    make_store(client, []).lookup(["alice@example.com"])
    assert client.requests[1] == client.requests[0]


def test_lookup_unprocessed_keys_give_up_temporary():
    client = StubDynamoDb(unprocessed_rounds=1000)
    with pytest.raises(TemporaryAwsError) as caught:
        make_store(client, []).lookup(["alice@example.com"])
    assert caught.value.code == "UnprocessedKeys"


def test_lookup_client_error_temporary():
    client = StubDynamoDb(error=client_error(
        "ProvisionedThroughputExceededException", "BatchGetItem"))
    with pytest.raises(TemporaryAwsError) as caught:
        make_store(client).lookup(["alice@example.com"])
    assert caught.value.code == "ProvisionedThroughputExceededException"
    assert caught.value.operation == "BatchGetItem"


def test_lookup_missing_table_temporary():
    client = StubDynamoDb(error=client_error("ResourceNotFoundException",
                                             "BatchGetItem"))
    with pytest.raises(TemporaryAwsError):
        make_store(client).lookup(["alice@example.com"])


def test_lookup_client_error_chained():
    error = client_error("InternalServerError", "BatchGetItem")
    client = StubDynamoDb(error=error)
    with pytest.raises(TemporaryAwsError) as caught:
        make_store(client).lookup(["alice@example.com"])
    assert caught.value.__cause__ is error


@pytest.mark.parametrize("form", ["L", "SS"])
def test_lookup_patterns_both_forms(form):
    client = StubDynamoDb()
    client.tables[BLOCKED]["alice@example.com"] = blocked_item(
        "alice@example.com", ["spam@*.com", "*@bad.example"], form)
    result = make_store(client).lookup(["alice@example.com"])
    assert sorted(result.blocked_patterns["alice@example.com"]) == \
        ["*@bad.example", "spam@*.com"]


def test_lookup_patterns_lowercased():
    client = StubDynamoDb()
    client.tables[BLOCKED]["alice@example.com"] = blocked_item(
        "alice@example.com", [" SPAM@Bad.Example "])
    result = make_store(client).lookup(["alice@example.com"])
    assert result.blocked_patterns["alice@example.com"] == \
        ["spam@bad.example"]


def test_lookup_pattern_plain_string_accepted():
    client = StubDynamoDb()
    client.tables[BLOCKED]["alice@example.com"] = {
        "email_address": {"S": "alice@example.com"},
        "blocked_patterns": {"S": "*@bad.example"}}
    result = make_store(client).lookup(["alice@example.com"])
    assert result.blocked_patterns["alice@example.com"] == ["*@bad.example"]


def test_lookup_item_without_patterns_is_empty():
    client = StubDynamoDb()
    client.tables[BLOCKED]["alice@example.com"] = {
        "email_address": {"S": "alice@example.com"}}
    result = make_store(client).lookup(["alice@example.com"])
    assert result.blocked_patterns["alice@example.com"] == []


def test_lookup_domain_item_stored_under_domain():
    client = StubDynamoDb()
    client.tables[BLOCKED]["example.com"] = blocked_item(
        "example.com", ["*@bad.example"])
    result = make_store(client).lookup(["alice@example.com"])
    assert result.patterns_for("alice@example.com") == ["*@bad.example"]


def test_lookup_rules_item_deserialised():
    client = StubDynamoDb()
    client.tables[RULES]["alice@example.com"] = {
        "email_address": {"S": "alice@example.com"},
        "ooo_days": {"N": "3"},
        "forwards": {"SS": ["x@example.net"]}}
    rules = make_store(client).lookup(["alice@example.com"]).rules
    assert rules["alice@example.com"]["ooo_days"] == 3
    assert rules["alice@example.com"]["forwards"] == {"x@example.net"}


def test_lookup_missing_items_absent():
    result = make_store(StubDynamoDb()).lookup(["alice@example.com"])
    assert result.rules == {}
    assert result.blocked_patterns == {}


def test_patterns_for_combines_own_and_domain():
    rules = RecipientRules(blocked_patterns={
        "alice@example.com": ["a@bad.example"],
        "example.com": ["*@spam.example"]})
    assert rules.patterns_for("alice@example.com") == \
        ["a@bad.example", "*@spam.example"]


def test_patterns_for_unknown_recipient_empty():
    assert RecipientRules().patterns_for("alice@example.com") == []
