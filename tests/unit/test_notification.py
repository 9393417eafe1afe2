"""Every SQS body form is classified into one notification shape."""

from __future__ import annotations

import json

import pytest

from email_worker.errors import PoisonMessageError
from email_worker.mail.notification import (IgnoredNotification,
                                            Notification, classify)
from tests.unit.support import shared_file

DOMAIN = "example.com"
SES_KEY = "inbound/k9p346n3d25rq4f5r37e3p3e28iq97jb6cn64301"


def fixture_body(name: str) -> str:
    return shared_file("fixtures", name).read_text()


def ses_document(**receipt_changes) -> dict:
    document = json.loads(
        fixture_body("sqs_body_ses_received_raw_delivery.json"))
    document["receipt"].update(receipt_changes)
    return document


def sns_envelope(message: str, sns_type: str = "Notification") -> str:
    return json.dumps({"Type": sns_type, "MessageId": "sns-1",
                       "Message": message})


@pytest.fixture
def raw_delivery():
    return classify(fixture_body("sqs_body_ses_received_raw_delivery.json"),
                    DOMAIN)


def test_sns_wrapped_equals_raw_delivery(raw_delivery):
    wrapped = classify(
        fixture_body("sqs_body_sns_wrapped_ses_received.json"), DOMAIN)
    assert wrapped == raw_delivery


def test_ses_kind(raw_delivery):
    assert isinstance(raw_delivery, Notification)
    assert raw_delivery.kind == "ses"


def test_ses_bucket_from_action(raw_delivery):
    assert raw_delivery.bucket == "mail-inbound-example-com"


def test_ses_key_verbatim(raw_delivery):
    assert raw_delivery.key == SES_KEY


def test_ses_sender_from_mail_source(raw_delivery):
    assert raw_delivery.sender == "dave@example.net"


def test_ses_recipients_from_receipt(raw_delivery):
    # bob is a Bcc recipient, erin is in the headers but not the envelope.
    assert raw_delivery.recipients == ("alice@example.com",
                                       "bob@example.com")


def test_ses_message_id_recorded(raw_delivery):
    assert raw_delivery.ses_message_id == \
        "k9p346n3d25rq4f5r37e3p3e28iq97jb6cn64301"


def test_ses_recipients_ignore_destination():
    # erin@example.net is in mail.destination only.
    notification = classify(
        fixture_body("sqs_body_ses_received_raw_delivery.json"),
        "example.net")
    assert notification.recipients == ()


def test_ses_recipients_lowercased_deduplicated():
    document = ses_document(recipients=[
        "Alice@Example.COM", "alice@example.com", "bob@example.com",
        "carol@example.net", "dan@sub.example.com"])
    notification = classify(json.dumps(document), DOMAIN)
    assert notification.recipients == ("alice@example.com",
                                       "bob@example.com")


def test_ses_empty_source_is_null_sender():
    document = ses_document()
    document["mail"]["source"] = ""
    assert classify(json.dumps(document), DOMAIN).sender == ""


def test_ses_missing_source_is_null_sender():
    document = ses_document()
    del document["mail"]["source"]
    assert classify(json.dumps(document), DOMAIN).sender == ""


def test_ses_sender_lowercased():
    document = ses_document()
    document["mail"]["source"] = "Dave@Example.NET"
    assert classify(json.dumps(document), DOMAIN).sender == \
        "dave@example.net"


def test_ses_without_bucket_leaves_bucket_unset():
    document = ses_document()
    del document["receipt"]["action"]["bucketName"]
    assert classify(json.dumps(document), DOMAIN).bucket is None


def test_ses_setup_object_ignored():
    document = ses_document()
    document["receipt"]["action"]["objectKey"] = \
        "inbound/AMAZON_SES_SETUP_NOTIFICATION"
    result = classify(json.dumps(document), DOMAIN)
    assert isinstance(result, IgnoredNotification)


def test_ses_bounce_type_is_poison():
    document = ses_document()
    document["notificationType"] = "Bounce"
    with pytest.raises(PoisonMessageError):
        classify(json.dumps(document), DOMAIN)


def test_ses_without_object_key_is_poison():
    document = ses_document()
    document["receipt"]["action"] = {"type": "Lambda",
                                     "functionArn": "arn:fixture"}
    with pytest.raises(PoisonMessageError):
        classify(json.dumps(document), DOMAIN)


def test_ses_without_recipients_is_poison():
    document = ses_document()
    del document["receipt"]["recipients"]
    with pytest.raises(PoisonMessageError):
        classify(json.dumps(document), DOMAIN)


def test_s3_event_key_decoded():
    notification = classify(
        fixture_body("sqs_body_s3_event_key_space_plus.json"), DOMAIN)
    assert notification.key == "inbound/Q3 report+final.eml"


def test_s3_event_bucket():
    notification = classify(
        fixture_body("sqs_body_s3_event_key_space_plus.json"), DOMAIN)
    assert notification.bucket == "mail-inbound-example-com"


def test_s3_event_has_no_envelope():
    notification = classify(
        fixture_body("sqs_body_s3_event_key_space_plus.json"), DOMAIN)
    assert notification.kind == "s3"
    assert notification.sender is None
    assert notification.recipients is None


def test_s3_event_through_sns_classified():
    body = sns_envelope(
        fixture_body("sqs_body_s3_event_key_space_plus.json"))
    assert classify(body, DOMAIN).key == "inbound/Q3 report+final.eml"


def test_s3_event_two_records_is_poison():
    document = json.loads(
        fixture_body("sqs_body_s3_event_key_space_plus.json"))
    document["Records"].append(document["Records"][0])
    with pytest.raises(PoisonMessageError):
        classify(json.dumps(document), DOMAIN)


def test_s3_event_other_source_is_poison():
    document = json.loads(
        fixture_body("sqs_body_s3_event_key_space_plus.json"))
    document["Records"][0]["eventSource"] = "aws:sqs"
    with pytest.raises(PoisonMessageError):
        classify(json.dumps(document), DOMAIN)


def test_s3_event_setup_object_ignored():
    document = json.loads(
        fixture_body("sqs_body_s3_event_key_space_plus.json"))
    document["Records"][0]["s3"]["object"]["key"] = \
        "inbound/AMAZON_SES_SETUP_NOTIFICATION"
    result = classify(json.dumps(document), DOMAIN)
    assert isinstance(result, IgnoredNotification)


def test_s3_test_event_ignored():
    result = classify(fixture_body("sqs_body_s3_test_event.json"), DOMAIN)
    assert isinstance(result, IgnoredNotification)


def test_sns_subscription_confirmation_ignored():
    body = sns_envelope("You have chosen to subscribe",
                        sns_type="SubscriptionConfirmation")
    assert isinstance(classify(body, DOMAIN), IgnoredNotification)


def test_sns_topic_validation_text_ignored():
    body = sns_envelope("Successfully validated SNS topic for Amazon SES")
    assert isinstance(classify(body, DOMAIN), IgnoredNotification)


def test_sns_message_not_json_is_poison():
    with pytest.raises(PoisonMessageError):
        classify(sns_envelope("plain text"), DOMAIN)


def test_sns_message_object_is_poison():
    body = json.dumps({"Type": "Notification", "Message": {"a": 1}})
    with pytest.raises(PoisonMessageError):
        classify(body, DOMAIN)


def test_sns_nested_too_deep_is_poison():
    body = fixture_body("sqs_body_ses_received_raw_delivery.json")
    for _ in range(5):
        body = sns_envelope(body)
    with pytest.raises(PoisonMessageError):
        classify(body, DOMAIN)


@pytest.mark.parametrize("body", [
    "", "not json", "[]", "42", "null", '"text"', "{}",
    '{"Records": []}', '{"unrelated": true}'])
def test_unknown_body_is_poison(body):
    with pytest.raises(PoisonMessageError):
        classify(body, DOMAIN)


def test_deeply_nested_json_is_poison():
    with pytest.raises(PoisonMessageError):
        classify("[" * 100_000, DOMAIN)


def test_sns_deeply_nested_message_is_poison():
    with pytest.raises(PoisonMessageError):
        classify(sns_envelope("[" * 100_000), DOMAIN)
