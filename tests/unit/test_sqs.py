"""Queue calls are batched at 10 and report the entries SQS rejected."""

from __future__ import annotations

import json

import pytest

from email_worker.aws.sqs import DomainQueue
from email_worker.errors import TemporaryAwsError
from tests.unit.support import client_error

QUEUE_URL = "http://127.0.0.1:5000/123456789012/example-com-queue"


class StubSqs:
    """Record SQS calls and report chosen receipt handles as Failed."""

    def __init__(self, messages=None, failing_handles=(), error=None):
        self.messages = messages or []
        self.failing_handles = set(failing_handles)
        self.error = error
        self.calls = []

    def _record(self, name, params):
        self.calls.append((name, params))
        if self.error is not None:
            raise self.error

    def get_queue_url(self, **params):
        self._record("get_queue_url", params)
        return {"QueueUrl": QUEUE_URL}

    def receive_message(self, **params):
        self._record("receive_message", params)
        return {"Messages": self.messages} if self.messages else {}

    def delete_message_batch(self, **params):
        self._record("delete_message_batch", params)
        return self._batch_response(params["Entries"])

    def change_message_visibility_batch(self, **params):
        self._record("change_message_visibility_batch", params)
        return self._batch_response(params["Entries"])

    def get_queue_attributes(self, **params):
        self._record("get_queue_attributes", params)
        return {"Attributes": {"ApproximateNumberOfMessages": "3"}}

    def _batch_response(self, entries):
        failed = [{"Id": e["Id"], "SenderFault": False,
                   "Code": "ReceiptHandleIsInvalid", "Message": "stub"}
                  for e in entries
                  if e["ReceiptHandle"] in self.failing_handles]
        successful = [{"Id": e["Id"]} for e in entries
                      if e["ReceiptHandle"] not in self.failing_handles]
        return {"Successful": successful, "Failed": failed}

    def entries(self, name):
        return [params["Entries"] for call, params in self.calls
                if call == name]


def make_queue(client):
    queue = DomainQueue(client, "example-com-queue")
    queue.url = QUEUE_URL
    return queue


def handles(count):
    return [f"handle-{i:02d}" for i in range(count)]


def raw_message(number, receive_count="1", body="{}"):
    message = {"MessageId": f"m-{number}", "ReceiptHandle": f"h-{number}",
               "Body": body}
    if receive_count is not None:
        message["Attributes"] = {"ApproximateReceiveCount": receive_count}
    return message


def test_resolve_stores_url():
    queue = DomainQueue(StubSqs(), "example-com-queue")
    queue.resolve()
    assert queue.url == QUEUE_URL


def test_resolve_missing_queue_temporary():
    client = StubSqs(error=client_error(
        "AWS.SimpleQueueService.NonExistentQueue", "GetQueueUrl"))
    with pytest.raises(TemporaryAwsError) as caught:
        DomainQueue(client, "example-com-queue").resolve()
    assert caught.value.service == "sqs"


def test_delete_batches_at_ten():
    client = StubSqs()
    make_queue(client).delete(handles(23))
    sizes = [len(entries)
             for entries in client.entries("delete_message_batch")]
    assert sizes == [10, 10, 3]


def test_delete_sends_every_handle_once():
    client = StubSqs()
    make_queue(client).delete(handles(23))
    sent = [e["ReceiptHandle"]
            for entries in client.entries("delete_message_batch")
            for e in entries]
    assert sent == handles(23)


def test_delete_entry_ids_unique_per_batch():
    client = StubSqs()
    make_queue(client).delete(handles(12))
    for entries in client.entries("delete_message_batch"):
        ids = [e["Id"] for e in entries]
        assert len(ids) == len(set(ids))


def test_delete_returns_failed_handles():
    client = StubSqs(failing_handles={"handle-03", "handle-14"})
    failed = make_queue(client).delete(handles(20))
    assert failed == ["handle-03", "handle-14"]


def test_delete_all_successful_returns_empty():
    assert make_queue(StubSqs()).delete(handles(3)) == []


def test_delete_nothing_makes_no_call():
    client = StubSqs()
    make_queue(client).delete([])
    assert client.calls == []


def test_delete_client_error_temporary():
    client = StubSqs(error=client_error("AccessDenied", "DeleteMessageBatch"))
    with pytest.raises(TemporaryAwsError) as caught:
        make_queue(client).delete(handles(1))
    assert caught.value.code == "AccessDenied"


def test_change_visibility_batches_at_ten():
    client = StubSqs()
    make_queue(client).change_visibility(handles(11), 30)
    sizes = [len(entries)
             for entries in client.entries("change_message_visibility_batch")]
    assert sizes == [10, 1]


def test_change_visibility_sets_timeout():
    client = StubSqs()
    make_queue(client).change_visibility(handles(2), 45)
    entries = client.entries("change_message_visibility_batch")[0]
    assert [e["VisibilityTimeout"] for e in entries] == [45, 45]


def test_change_visibility_returns_failed_handles():
    client = StubSqs(failing_handles={"handle-10"})
    failed = make_queue(client).change_visibility(handles(11), 0)
    assert failed == ["handle-10"]


def test_receive_parses_receive_count():
    client = StubSqs(messages=[raw_message(1, "4")])
    received = make_queue(client).receive(1, 0, 30)
    assert received[0].receive_count == 4


def test_receive_count_defaults_to_one():
    client = StubSqs(messages=[raw_message(1, receive_count=None)])
    assert make_queue(client).receive(1, 0, 30)[0].receive_count == 1


def test_receive_keeps_fields():
    client = StubSqs(messages=[raw_message(7, body='{"a": 1}')])
    message = make_queue(client).receive(1, 0, 30)[0]
    assert message.message_id == "m-7"
    assert message.receipt_handle == "h-7"
    assert message.body == '{"a": 1}'


def test_receive_empty_queue():
    assert make_queue(StubSqs()).receive(10, 0, 30) == []


def test_receive_requests_receive_count():
    client = StubSqs()
    make_queue(client).receive(5, 20, 300)
    params = client.calls[0][1]
    assert "ApproximateReceiveCount" in params["MessageSystemAttributeNames"]


@pytest.mark.parametrize("requested,sent", [(0, 1), (5, 5), (25, 10)])
def test_receive_max_messages_clamped(requested, sent):
    client = StubSqs()
    make_queue(client).receive(requested, 0, 30)
    assert client.calls[0][1]["MaxNumberOfMessages"] == sent


def test_receive_passes_wait_and_visibility():
    client = StubSqs()
    make_queue(client).receive(1, 20, 300)
    params = client.calls[0][1]
    assert params["WaitTimeSeconds"] == 20
    assert params["VisibilityTimeout"] == 300
    assert params["QueueUrl"] == QUEUE_URL


def test_attributes_returned():
    assert make_queue(StubSqs()).attributes() == \
        {"ApproximateNumberOfMessages": "3"}


def test_redrive_target_arn():
    arn = "arn:aws:sqs:us-east-2:123456789012:example-com-dlq"
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
    assert DomainQueue.redrive_target({"RedrivePolicy": policy}) == arn


@pytest.mark.parametrize("attributes", [
    {}, {"RedrivePolicy": ""}, {"RedrivePolicy": "not json"},
    {"RedrivePolicy": "[]"}, {"RedrivePolicy": '{"maxReceiveCount": 5}'},
    {"RedrivePolicy": '{"deadLetterTargetArn": ""}'},
    {"RedrivePolicy": '{"deadLetterTargetArn": 7}'}])
def test_redrive_target_absent(attributes):
    assert DomainQueue.redrive_target(attributes) is None
