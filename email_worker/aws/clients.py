"""Create the boto3 clients, once, in the main thread.

Clients are thread-safe after creation, sessions are not, so the worker
builds every client up front and shares them between polling threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from email_worker.config import Settings
from email_worker.metrics.registry import WorkerMetrics


@dataclass(frozen=True)
class AwsClients:
    sqs: Any
    s3: Any
    dynamodb: Any


def create_clients(settings: Settings, metrics: WorkerMetrics) -> AwsClients:
    """Build SQS, S3 and DynamoDB clients that count their calls."""
    session = boto3.session.Session(region_name=settings.aws_region)
    # Every processing thread may hold one connection per service; the
    # polling threads need one more each.
    pool_size = max(10, len(settings.domains) * (settings.worker_threads + 2))
    base = Config(
        retries={"mode": "standard", "total_max_attempts": 5},
        max_pool_connections=pool_size,
        connect_timeout=5,
        read_timeout=30,
    )
    # A long poll keeps the connection open for up to 20 s, so the read
    # timeout must exceed POLL_WAIT_SECONDS.
    sqs_config = base.merge(
        Config(read_timeout=settings.poll_wait_seconds + 15))
    clients = AwsClients(
        sqs=_client(session, "sqs", settings, sqs_config),
        s3=_client(session, "s3", settings, base),
        dynamodb=_client(session, "dynamodb", settings, base),
    )
    for client in (clients.sqs, clients.s3, clients.dynamodb):
        _count_calls(client, metrics)
    return clients


def _client(session: boto3.session.Session, service: str,
            settings: Settings, config: Config) -> Any:
    return session.client(service, endpoint_url=settings.aws_endpoint_url,
                          config=config)


def _count_calls(client: Any, metrics: WorkerMetrics) -> None:
    service = client.meta.service_model.service_name

    def count(model: Any, **_kwargs: Any) -> None:
        metrics.count_aws_call(service, model.name)

    client.meta.events.register("before-call", count)
