"""Every SQS body form that SES, SNS and S3 produce leads to delivery.

The sample bodies name example.com, example.net and the bucket
``mail-inbound-example-com`` literally, so this module runs its own moto
server with exactly those names instead of the per-test domains.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.aws_endpoint import MotoServer
from devstack.provision import LocalAws
from tests.e2e.conftest import FIXTURES_DIR, Stack, make_stack

pytestmark = pytest.mark.e2e

DOMAINS = ("example.com", "example.net")
FIXTURE_BUCKET = "mail-inbound-example-com"
SES_KEY = "inbound/k9p346n3d25rq4f5r37e3p3e28iq97jb6cn64301"
S3_EVENT_KEY = "inbound/Q3 report+final.eml"


def fixture_text(name: str) -> str:
    return (FIXTURES_DIR / name).read_text()


@pytest.fixture(scope="module")
def literal_aws(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    log_path = tmp_path_factory.mktemp("moto-literal") / "moto.log"
    with open(log_path, "wb") as log, MotoServer(log=log) as server:
        aws = LocalAws(server.url)
        aws.create_tables()
        aws.s3.create_bucket(Bucket=FIXTURE_BUCKET)
        for domain in DOMAINS:
            aws.create_domain(domain)
        yield aws


@contextlib.contextmanager
def literal_stack(aws: LocalAws, folder: Path) -> Iterator[Stack]:
    """Yield example.com and example.net with empty queues and bucket."""
    stack = make_stack(aws, DOMAINS, folder)
    try:
        for domain in DOMAINS:
            url = aws.sqs.get_queue_url(
                QueueName=domain.replace(".", "-") + "-queue")["QueueUrl"]
            stack.queues[domain] = url
            empty_queue(aws, url)
        listing = aws.s3.list_objects_v2(Bucket=FIXTURE_BUCKET)
        for item in listing.get("Contents", []):
            aws.s3.delete_object(Bucket=FIXTURE_BUCKET, Key=item["Key"])
        yield stack
    finally:
        stack.close()


def empty_queue(aws: LocalAws, url: str) -> None:
    # PurgeQueue may run once a minute only, so receive and delete.
    while True:
        messages = aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
            WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return
        for message in messages:
            aws.sqs.delete_message(QueueUrl=url,
                                   ReceiptHandle=message["ReceiptHandle"])


def inbound() -> bytes:
    return (FIXTURES_DIR / "inbound_message.eml").read_bytes()


def run_body(aws: LocalAws, folder: Path, body: str,
             key: str) -> Iterator[Stack]:
    """Store the sample message under ``key``, queue ``body``, finish."""
    with literal_stack(aws, folder) as stack:
        aws.s3.put_object(Bucket=FIXTURE_BUCKET, Key=key, Body=inbound())
        stack.start_worker()
        stack.send_body("example.com", body)
        stack.wait_received(1)
        stack.wait_drained()
        yield stack


class TestSesReceived:

    @pytest.fixture(scope="class", params=[
        "sqs_body_sns_wrapped_ses_received.json",
        "sqs_body_ses_received_raw_delivery.json",
    ], ids=["sns_wrapped", "raw_delivery"])
    @classmethod
    def done(cls, request: pytest.FixtureRequest, literal_aws: LocalAws,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        yield from run_body(literal_aws, tmp_path_factory.mktemp("ses"),
                            fixture_text(request.param), SES_KEY)

    def test_ses_body_delivers_original_bytes(self, done: Stack) -> None:
        assert [m.content for m in done.sink.received()] == [inbound()]

    def test_ses_body_uses_receipt_recipients(self, done: Stack) -> None:
        assert [m.rcpt_tos for m in done.sink.received()] == [
            ("alice@example.com", "bob@example.com")]

    def test_ses_body_uses_mail_source_as_sender(self, done: Stack) -> None:
        assert [m.mail_from for m in done.sink.received()] == [
            "dave@example.net"]

    def test_ses_body_marks_named_object(self,
                                                   done: Stack) -> None:
        head = done.aws.s3.head_object(Bucket=FIXTURE_BUCKET, Key=SES_KEY)
        assert head["Metadata"].get("status") == "delivered"


class TestS3Event:

    @pytest.fixture(scope="class")
    @classmethod
    def done(cls, literal_aws: LocalAws,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        yield from run_body(
            literal_aws, tmp_path_factory.mktemp("s3event"),
            fixture_text("sqs_body_s3_event_key_space_plus.json"),
            S3_EVENT_KEY)

    def test_s3_event_delivers_decoded_key(self, done: Stack) -> None:
        assert [m.content for m in done.sink.received()] == [inbound()]

    def test_s3_event_recipients_from_headers(
            self, done: Stack) -> None:
        assert [m.rcpt_tos for m in done.sink.received()] == [
            ("alice@example.com",)]

    def test_s3_event_sender_from_return_path(self, done: Stack) -> None:
        assert [m.mail_from for m in done.sink.received()] == [
            "dave@example.net"]

    def test_s3_event_marks_object_processed(self, done: Stack) -> None:
        head = done.aws.s3.head_object(Bucket=FIXTURE_BUCKET,
                                       Key=S3_EVENT_KEY)
        assert head["Metadata"].get("processed") == "true"


class TestS3TestEvent:

    @pytest.fixture(scope="class")
    @classmethod
    def done(cls, literal_aws: LocalAws,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        """Queue a test event, then a real message, and let both finish.

        The real message coming through shows that the test event was
        handled, not merely left waiting.
        """
        folder = tmp_path_factory.mktemp("testevent")
        with literal_stack(literal_aws, folder) as stack:
            literal_aws.s3.put_object(Bucket=FIXTURE_BUCKET, Key=SES_KEY,
                                      Body=inbound())
            stack.start_worker()
            stack.send_body("example.com",
                            fixture_text("sqs_body_s3_test_event.json"))
            stack.wait_drained()
            stack.send_body(
                "example.com",
                fixture_text("sqs_body_ses_received_raw_delivery.json"))
            stack.wait_received(1)
            stack.wait_drained()
            yield stack

    def test_s3_test_event_is_deleted(self, done: Stack) -> None:
        assert done.depth("example.com") == 0

    def test_s3_test_event_delivers_nothing(self, done: Stack) -> None:
        assert len(done.sink.received()) == 1

    def test_s3_test_event_is_counted_as_ignored(self, done: Stack) -> None:
        assert done.workers[-1].metric(
            "emails_processed_total", domain="example.com",
            status="ignored") == 1


def test_fixture_bodies_parse() -> None:
    names = ["sqs_body_sns_wrapped_ses_received.json",
             "sqs_body_ses_received_raw_delivery.json",
             "sqs_body_s3_event_key_space_plus.json",
             "sqs_body_s3_test_event.json"]
    parsed = [json.loads(fixture_text(name)) for name in names]
    assert all(isinstance(document, dict) for document in parsed)
