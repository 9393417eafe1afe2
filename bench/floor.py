"""The floor: the worker's AWS and SMTP calls with no worker logic.

Per domain it runs WORKER_THREADS threads.  Each receives up to ten
notifications, and for each one reads the S3 object, makes one
BatchGetItem, sends the bytes over a reused SMTP connection and copies
the object onto itself with new metadata; then it deletes the batch.
Run by bench.run with the worker's environment.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import threading
from typing import Any

import boto3
from botocore.config import Config


def _clients(threads: int) -> tuple[Any, Any, Any]:
    config = Config(max_pool_connections=max(10, threads + 2),
                    retries={"mode": "standard", "total_max_attempts": 5})
    session = boto3.session.Session()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return tuple(session.client(name, endpoint_url=endpoint, config=config)
                 for name in ("sqs", "s3", "dynamodb"))  # type: ignore


def _handle(message: dict[str, Any], s3: Any, dynamodb: Any,
            smtp: smtplib.SMTP, domain: str) -> None:
    document = json.loads(json.loads(message["Body"])["Message"])
    action = document["receipt"]["action"]
    recipients = document["receipt"]["recipients"]
    bucket, key = action["bucketName"], action["objectKey"]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    keys = [{"email_address": {"S": r}} for r in recipients]
    dynamodb.batch_get_item(RequestItems={
        "email-rules": {"Keys": keys},
        "email-blocked-senders": {
            "Keys": keys + [{"email_address": {"S": domain}}]}})
    smtp.sendmail(document["mail"]["source"], recipients, body)
    s3.copy_object(Bucket=bucket, Key=key,
                   CopySource={"Bucket": bucket, "Key": key},
                   MetadataDirective="REPLACE",
                   Metadata={"processed": "true"})


def _loop(domain: str, queue_url: str, clients: tuple[Any, Any, Any],
          stop: threading.Event) -> None:
    sqs, s3, dynamodb = clients
    smtp = smtplib.SMTP(os.environ["SMTP_HOST"],
                        int(os.environ["SMTP_PORT"]), timeout=30)
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10,
            WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            _handle(message, s3, dynamodb, smtp, domain)
        if messages:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])
    smtp.quit()


def main() -> None:
    domains = os.environ["DOMAINS"].split(",")
    threads = int(os.environ.get("WORKER_THREADS", "4"))
    clients = _clients(threads * len(domains))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers = []
    for domain in domains:
        url = clients[0].get_queue_url(
            QueueName=domain.replace(".", "-") + "-queue")["QueueUrl"]
        for _ in range(threads):
            worker = threading.Thread(target=_loop,
                                      args=(domain, url, clients, stop))
            worker.start()
            workers.append(worker)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
