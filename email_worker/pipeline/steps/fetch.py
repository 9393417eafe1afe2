"""Download the raw message and recognise one that was already processed."""

from __future__ import annotations

from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services


class FetchStep:
    """Read the S3 object as bytes; stop if it carries processed=true."""

    name = "fetch"

    def __init__(self, services: Services) -> None:
        self._store = services.store

    def process(self, context: MessageContext) -> None:
        stored = self._store.fetch(context.bucket, context.notification.key)
        context.stored = stored
        context.body = stored.body
        if stored.metadata.get("processed") == "true":
            # SQS and S3 events are at-least-once: a redelivered
            # notification must not deliver the message a second time.
            context.status = "duplicate"
            context.finished = True
            context.log.info("already processed by %s at %s; acknowledged",
                             stored.metadata.get("processed_by", "?"),
                             stored.metadata.get("processed_at", "?"))
