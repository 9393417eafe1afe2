"""Fetch every recipient's rules and blocklists in one batched call."""

from __future__ import annotations

from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services


class LookupStep:
    name = "lookup"

    def __init__(self, services: Services) -> None:
        self._rules = services.rules

    def process(self, context: MessageContext) -> None:
        if context.recipients:
            context.rules = self._rules.lookup(context.recipients)
