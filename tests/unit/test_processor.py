"""Each SQS message ends deleted, retried later or left for the DLQ.

The pipeline steps are stubs, so these tests cover only the decisions
the processor makes from their outcome.
"""

from __future__ import annotations

import json

import pytest

from email_worker.aws.sqs import ReceivedMessage
from email_worker.errors import (BounceNotTrackedError, ObjectNotFoundError,
                                 PoisonMessageError, TemporaryAwsError)
from email_worker.processor import (DELETE, LEAVE_FOR_DLQ, MAX_RETRY_DELAY,
                                    RETRY, MessageProcessor)
from tests.unit.support import (RecordingStore, make_services, shared_file,
                                stored_object)

DOMAIN = "example.com"
MAX_RECEIVES = 3
RETRY_DELAY = 30


def ses_body(bucket="mail-inbound-example-com"):
    action = {"type": "S3", "objectKey": "inbound/abc123"}
    if bucket:
        action["bucketName"] = bucket
    return json.dumps({
        "notificationType": "Received",
        "mail": {"source": "dave@example.net", "messageId": "abc123"},
        "receipt": {"recipients": ["alice@example.com"],
                    "action": action}})


def received(body=None, receive_count=1):
    return ReceivedMessage(message_id="sqs-1", receipt_handle="handle-1",
                           body=ses_body() if body is None else body,
                           receive_count=receive_count)


class StubStep:
    """Run ``action(context)`` and record the contexts it saw."""

    def __init__(self, name, action=None):
        self.name = name
        self.action = action
        self.contexts = []

    def process(self, context):
        self.contexts.append(context)
        if self.action is not None:
            self.action(context)


def fetched(context):
    context.stored = stored_object()


def finish(status):
    def action(context):
        context.status = status
    return action


def fail_with(error):
    def action(context):
        raise error
    return action


def make_processor(*actions, store=None):
    steps = [StubStep("fetch", fetched)]
    steps += [StubStep(f"step{i}", action)
              for i, action in enumerate(actions)]
    services = make_services(store=store or RecordingStore(),
                             max_receive_count=MAX_RECEIVES,
                             retry_delay_seconds=RETRY_DELAY)
    return MessageProcessor(services, steps=steps), steps, services


def processed_count(services, status):
    counter = services.metrics.emails_processed.labels(domain=DOMAIN,
                                                       status=status)
    return counter._value.get()


def test_final_status_deletes():
    processor, _, _ = make_processor(finish("delivered"))
    disposition = processor.process(DOMAIN, received(), False)
    assert disposition.action == DELETE
    assert disposition.status == "delivered"


def test_final_status_counted():
    processor, _, services = make_processor(finish("partial"))
    processor.process(DOMAIN, received(), False)
    assert processed_count(services, "partial") == 1


def test_no_status_counts_failed():
    processor, _, _ = make_processor()
    disposition = processor.process(DOMAIN, received(), False)
    assert (disposition.action, disposition.status) == (DELETE, "failed")


def test_context_bucket_from_notification():
    processor, steps, _ = make_processor()
    processor.process(DOMAIN, received(), False)
    assert steps[0].contexts[0].bucket == "mail-inbound-example-com"


def test_context_bucket_from_template():
    processor, steps, _ = make_processor()
    processor.process(DOMAIN, received(ses_body(bucket=None)), False)
    assert steps[0].contexts[0].bucket == "example-com-emails"


def test_context_carries_receive_count():
    processor, steps, _ = make_processor()
    processor.process(DOMAIN, received(receive_count=2), False)
    assert steps[0].contexts[0].receive_count == 2


def test_finished_context_skips_later_steps():
    def duplicate(context):
        context.status = "duplicate"
        context.finished = True
    processor, steps, _ = make_processor(duplicate, finish("delivered"))
    disposition = processor.process(DOMAIN, received(), False)
    assert disposition.status == "duplicate"
    assert steps[2].contexts == []


def test_ignored_notification_deleted():
    body = shared_file("fixtures", "sqs_body_s3_test_event.json").read_text()
    processor, steps, _ = make_processor()
    disposition = processor.process(DOMAIN, received(body), False)
    assert (disposition.action, disposition.status) == (DELETE, "ignored")
    assert steps[0].contexts == []


def test_subscription_confirmation_deleted():
    body = json.dumps({"Type": "SubscriptionConfirmation",
                       "Message": "You have chosen to subscribe"})
    processor, _, _ = make_processor()
    assert processor.process(DOMAIN, received(body), False).action == DELETE


def test_poison_retried_below_limit():
    processor, steps, _ = make_processor()
    disposition = processor.process(DOMAIN, received("not json", 1), True)
    assert (disposition.action, disposition.status) == (RETRY, "poison")
    assert steps[0].contexts == []


@pytest.mark.parametrize("has_dlq", [True, False])
def test_poison_retried_until_limit(has_dlq):
    processor, _, _ = make_processor()
    actions = [processor.process(DOMAIN, received("not json", count),
                                 has_dlq).action
               for count in range(1, MAX_RECEIVES)]
    assert actions == [RETRY] * (MAX_RECEIVES - 1)


def test_poison_at_limit_left_for_dlq():
    processor, _, _ = make_processor()
    disposition = processor.process(
        DOMAIN, received("not json", MAX_RECEIVES), True)
    assert disposition.action == LEAVE_FOR_DLQ


def test_dlq_release_delayed():
    # Releasing at once would receive the message again in a tight loop
    # until SQS's own maxReceiveCount moves it.
    processor, _, _ = make_processor()
    disposition = processor.process(
        DOMAIN, received("not json", MAX_RECEIVES), True)
    assert disposition.delay == 4 * RETRY_DELAY


def test_poison_at_limit_deleted_without_dlq():
    processor, _, _ = make_processor()
    disposition = processor.process(
        DOMAIN, received("not json", MAX_RECEIVES), False)
    assert (disposition.action, disposition.status) == (DELETE, "failed")


def test_poison_past_limit_deleted_without_dlq():
    processor, _, _ = make_processor()
    disposition = processor.process(
        DOMAIN, received("{}", MAX_RECEIVES + 4), False)
    assert disposition.action == DELETE


def test_missing_object_retried_below_limit():
    error = ObjectNotFoundError("s3", "GetObject", "NoSuchKey", "gone")
    processor, _, _ = make_processor(fail_with(error))
    disposition = processor.process(DOMAIN, received(receive_count=1), False)
    assert (disposition.action, disposition.status) == (RETRY, "poison")


def test_missing_object_at_limit_marked_failed():
    error = ObjectNotFoundError("s3", "GetObject", "NoSuchKey", "gone")
    store = RecordingStore()
    processor, _, _ = make_processor(fail_with(error), store=store)
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES), False)
    assert disposition.action == DELETE
    assert store.replaced[-1]["status"] == "failed"


def test_step_poison_at_limit_left_for_dlq():
    processor, _, _ = make_processor(
        fail_with(PoisonMessageError("unreadable")))
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES), True)
    assert disposition.action == LEAVE_FOR_DLQ


def test_temporary_error_retried():
    error = TemporaryAwsError("dynamodb", "BatchGetItem", "Throttling", "")
    processor, _, _ = make_processor(fail_with(error))
    disposition = processor.process(DOMAIN, received(), False)
    assert (disposition.action, disposition.status) == (RETRY, "temporary")


def test_temporary_error_never_parked():
    error = TemporaryAwsError("s3", "GetObject", "SlowDown", "")
    processor, _, _ = make_processor(fail_with(error))
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES + 5), False)
    assert disposition.action == RETRY


@pytest.mark.parametrize("count,delay", [
    (1, RETRY_DELAY), (2, 2 * RETRY_DELAY), (3, 4 * RETRY_DELAY),
    (4, 8 * RETRY_DELAY), (10, MAX_RETRY_DELAY), (1000, MAX_RETRY_DELAY)])
def test_temporary_delay_grows(count, delay):
    error = TemporaryAwsError("s3", "GetObject", "SlowDown", "")
    processor, _, _ = make_processor(fail_with(error))
    disposition = processor.process(DOMAIN, received(receive_count=count),
                                    False)
    assert disposition.delay == delay


def test_temporary_retry_after_overrides_delay():
    processor, _, _ = make_processor(
        fail_with(BounceNotTrackedError("0100abc-000000", 7)))
    disposition = processor.process(DOMAIN, received(receive_count=4),
                                    False)
    assert (disposition.action, disposition.delay) == (RETRY, 7)


def test_deferred_recipients_retried():
    def defer(context):
        context.delivered = ["alice@example.com"]
        context.deferred = {"bob@example.com": "450 4.2.0 try later"}
    processor, _, _ = make_processor(defer)
    disposition = processor.process(DOMAIN, received(receive_count=2),
                                    False)
    assert (disposition.action, disposition.status) == (RETRY, "deferred")
    assert disposition.delay == 2 * RETRY_DELAY


def test_retry_not_counted_as_processed():
    error = TemporaryAwsError("s3", "GetObject", "SlowDown", "")
    processor, _, services = make_processor(fail_with(error))
    processor.process(DOMAIN, received(), False)
    assert processed_count(services, "temporary") == 0


@pytest.mark.parametrize("error", [RuntimeError("bug"), KeyError("key"),
                                   AttributeError("attr"),
                                   ZeroDivisionError()])
def test_unexpected_error_not_raised(error):
    processor, _, _ = make_processor(fail_with(error))
    disposition = processor.process(DOMAIN, received(), False)
    assert (disposition.action, disposition.status) == (RETRY, "poison")


def test_unexpected_error_at_limit_marks_failed():
    store = RecordingStore()
    processor, _, _ = make_processor(fail_with(RuntimeError("bug in step")),
                                     store=store)
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES), False)
    assert (disposition.action, disposition.status) == (DELETE, "failed")
    assert store.replaced[-1]["processed"] == "true"
    assert store.replaced[-1]["failure_reason"] == "bug in step"


def test_unexpected_error_with_dlq_leaves_object():
    store = RecordingStore()
    processor, _, _ = make_processor(fail_with(RuntimeError("bug")),
                                     store=store)
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES), True)
    assert disposition.action == LEAVE_FOR_DLQ
    assert store.replaced == []


def test_mark_failed_error_still_deletes():
    class FailingStore(RecordingStore):
        def replace_metadata(self, stored, metadata):
            raise TemporaryAwsError("s3", "CopyObject", "AccessDenied", "")
    processor, _, _ = make_processor(fail_with(RuntimeError("bug")),
                                     store=FailingStore())
    disposition = processor.process(
        DOMAIN, received(receive_count=MAX_RECEIVES), False)
    assert disposition.action == DELETE


def test_bad_message_then_good_message():
    calls = []

    def flaky(context):
        calls.append(context)
        if len(calls) == 1:
            raise RuntimeError("first message breaks a step")
        context.status = "delivered"
    processor, _, _ = make_processor(flaky)
    first = processor.process(DOMAIN, received(), False)
    second = processor.process(DOMAIN, received(), False)
    assert first.action == RETRY
    assert (second.action, second.status) == (DELETE, "delivered")
