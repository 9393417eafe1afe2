"""The shared clients and settings that pipeline steps use."""

from __future__ import annotations

from dataclasses import dataclass

from email_worker.aws.dynamodb import RulesStore
from email_worker.aws.s3 import MessageStore
from email_worker.aws.tracking import BounceStore, ReplyLog
from email_worker.config import Settings
from email_worker.metrics.registry import WorkerMetrics
from email_worker.smtp.delivery import SmtpSender


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: MessageStore
    rules: RulesStore
    smtp: SmtpSender
    metrics: WorkerMetrics
    internal_smtp: SmtpSender
    bounces: BounceStore
    reply_log: ReplyLog
