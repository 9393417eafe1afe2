"""deploy/cloudformation.yaml: cfn-lint, then a deployment into moto with
the real worker delivering one message through what the stacks made.

moto's CloudFormation has no model for AWS::SES::ReceiptRuleSet,
AWS::SES::ReceiptRule, AWS::S3::BucketPolicy, AWS::SQS::QueuePolicy,
AWS::SNS::TopicPolicy and AWS::SNS::Subscription: it skips them and
completes the stack with the rest.  It also ignores the tables'
TimeToLiveSpecification and the bucket's versioning and lifecycle.
Those are checked by cfn-lint and by reading the template.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from devstack.aws_endpoint import CREDENTIALS, REGION
from devstack.inject import ses_message_id, ses_received, sns_wrap
from devstack.smtp_sink import SmtpSink
from tests.deploy.conftest import DEPLOY, ROOT
from tests.e2e.conftest import (Stack, build_message, unique_label,
                                wait_until)

TEMPLATE = DEPLOY / "cloudformation.yaml"
MOTO_SKIPS = {"AWS::SES::ReceiptRuleSet", "AWS::SES::ReceiptRule",
              "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy",
              "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription"}
TABLE_KEYS = {"email-rules": "email_address",
              "email-blocked-senders": "email_address",
              "ses-outbound-messages": "MessageId",
              "email-autoreply-log": "reply_key"}


class _CfnLoader(yaml.SafeLoader):
    """Reads !Ref, !Sub and the other short forms as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str,
               node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template()["Resources"].items()
            if r.get("Condition") == kind}


def test_cfn_lint_is_clean() -> None:
    cfnlint = pytest.importorskip("cfnlint.api")
    matches = cfnlint.lint_file(
        TEMPLATE, config=cfnlint.ManualArgs(regions=["us-east-1",
                                                     "us-east-2"]))
    assert [str(m) for m in matches] == []


def test_every_resource_belongs_to_one_stack_kind() -> None:
    for name, resource in template()["Resources"].items():
        assert resource.get("Condition") in ("IsShared", "IsDomain"), name


def test_tables_have_the_worker_keys_and_ttl() -> None:
    tables = {r["Properties"]["TableName"]: r["Properties"]
              for r in resources_of("IsShared").values()
              if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == set(TABLE_KEYS)
    for name, key in TABLE_KEYS.items():
        assert tables[name]["KeySchema"] == [
            {"AttributeName": key, "KeyType": "HASH"}]
    for name in ("ses-outbound-messages", "email-autoreply-log"):
        assert tables[name]["TimeToLiveSpecification"] == {
            "AttributeName": "expiresAt", "Enabled": True}


def test_domain_resources_wire_ses_to_the_queue() -> None:
    domain = resources_of("IsDomain")
    queue = domain["MailQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    bucket = domain["MailBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert "ExpirationInDays" in rule
    assert "NoncurrentVersionExpiration" in rule
    statement = domain["MailBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"][0]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    assert domain["MailSubscription"]["Properties"]["Protocol"] == "sqs"
    action = domain["ReceiptRule"]["Properties"]["Rule"]["Actions"][0]
    assert action["S3Action"] == {"BucketName": {"Ref": "MailBucket"},
                                  "TopicArn": {"Ref": "MailTopic"}}


def test_bounce_tracker_wiring() -> None:
    shared = resources_of("IsShared")
    function = shared["BounceTracker"]["Properties"]
    assert function["Handler"] == "handler.handler"
    assert function["Environment"]["Variables"][
        "DYNAMODB_MESSAGES_TABLE"] == {"Ref": "MessagesTable"}
    statements = shared["BounceTrackerRole"]["Properties"]["Policies"][0][
        "PolicyDocument"]["Statement"]
    assert statements[0]["Action"] == ["dynamodb:UpdateItem",
                                       "dynamodb:GetItem"]
    assert shared["BounceSubscription"]["Properties"]["Protocol"] == "lambda"
    assert shared["BounceInvokePermission"]["Properties"][
        "Principal"] == "sns.amazonaws.com"


# -- deployed into moto ----------------------------------------------------


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION)


def _create_stack(cloudformation: Any, name: str,
                  **parameters: str) -> dict[str, Any]:
    cloudformation.create_stack(
        StackName=name, TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v}
                    for k, v in parameters.items()])
    stack = wait_until(
        lambda: next((s for s in cloudformation.describe_stacks(
            StackName=name)["Stacks"]
            if not s["StackStatus"].endswith("IN_PROGRESS")), None),
        timeout=30, description=f"stack {name}")
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    resources = cloudformation.list_stack_resources(
        StackName=name)["StackResourceSummaries"]
    created = {r["LogicalResourceId"] for r in resources
               if r["LogicalResourceId"]}
    expected = {n for n, r in template()["Resources"].items()
                if r["Condition"] == ("IsShared" if name.endswith("shared")
                                      else "IsDomain")
                and r["Type"] not in MOTO_SKIPS}
    assert created == expected
    return {o["OutputKey"]: o["OutputValue"]
            for o in stack.get("Outputs", [])}


def test_worker_delivers_through_deployed_stacks(moto_url: str,
                                                 tmp_path: Path) -> None:
    session = _session()
    cloudformation = session.client("cloudformation", endpoint_url=moto_url)
    s3 = session.client("s3", endpoint_url=moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    dynamodb = session.client("dynamodb", endpoint_url=moto_url)

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.write(ROOT / "bounce_lambda" / "handler.py", "handler.py")
    s3.create_bucket(Bucket="deploy-artifacts")
    s3.put_object(Bucket="deploy-artifacts", Key="bounce-lambda.zip",
                  Body=code.getvalue())

    label = unique_label()
    shared = _create_stack(cloudformation, f"{label}-shared",
                           StackKind="shared",
                           BounceCodeBucket="deploy-artifacts")
    assert shared["BounceFunctionArn"].endswith(":ses-bounce-tracker")
    domain = f"{label}.example.com"
    outputs = _create_stack(cloudformation, f"{label}-domain",
                            DomainName=domain)
    dashed = domain.replace(".", "-")
    assert outputs["BucketName"] == f"{dashed}-emails"
    assert outputs["QueueUrl"].endswith(f"/{dashed}-queue")

    for table, key in TABLE_KEYS.items():
        schema = dynamodb.describe_table(TableName=table)["Table"][
            "KeySchema"]
        assert schema == [{"AttributeName": key, "KeyType": "HASH"}]
    # Resolve the queue on the local endpoint, never the URL's host.
    queue_url = sqs.get_queue_url(QueueName=f"{dashed}-queue")["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{dashed}-dlq")

    from devstack.provision import LocalAws
    stack = Stack(aws=LocalAws(moto_url), sink=SmtpSink().start(),
                  domains=(domain, domain), folder=tmp_path,
                  worker_name="cloudformation")
    try:
        worker = stack.start_worker(
            DOMAINS=domain, AWS_EC2_METADATA_DISABLED="true")
        sender = "someone@sender.example"
        recipient = f"mailbox@{domain}"
        raw = build_message(sender, recipient, "through the stack")
        key = ses_message_id()
        s3.put_object(Bucket=outputs["BucketName"], Key=key, Body=raw)
        document = ses_received(outputs["BucketName"], key, sender,
                                [recipient], key)
        sqs.send_message(QueueUrl=queue_url,
                         MessageBody=json.dumps(sns_wrap(document)))
        stack.wait_received(1)
        mail = stack.sink.received()[0]
        assert mail.rcpt_tos == (recipient,)
        assert mail.content == raw
        metadata = wait_until(
            lambda: (m := s3.head_object(
                Bucket=outputs["BucketName"], Key=key)["Metadata"]).get(
                "processed") == "true" and m,
            description="processed metadata", worker=worker)
        assert metadata["status"] == "delivered"
    finally:
        stack.close()
