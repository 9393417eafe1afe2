"""The per-message pipeline: its steps and the order they run in."""

from __future__ import annotations

from typing import Protocol

from email_worker.pipeline.context import MessageContext
from email_worker.pipeline.services import Services
from email_worker.pipeline.steps.audit import AuditStep
from email_worker.pipeline.steps.autoreply import AutoReplyStep
from email_worker.pipeline.steps.blocklist import BlocklistStep
from email_worker.pipeline.steps.bounce import BounceRewriteStep
from email_worker.pipeline.steps.deliver import DeliverStep
from email_worker.pipeline.steps.envelope import EnvelopeStep
from email_worker.pipeline.steps.fetch import FetchStep
from email_worker.pipeline.steps.forward import ForwardStep
from email_worker.pipeline.steps.lookup import LookupStep

# The order of the steps, in one place.  A new feature is a new step
# class listed in STEP_CLASSES and named here.
PIPELINE = ("fetch", "envelope", "lookup", "blocklist", "bounce",
            "autoreply", "forward", "deliver", "audit")


class Step(Protocol):
    name: str

    def process(self, context: MessageContext) -> None: ...


STEP_CLASSES = {cls.name: cls for cls in (
    FetchStep, EnvelopeStep, LookupStep, BlocklistStep, BounceRewriteStep,
    AutoReplyStep, ForwardStep, DeliverStep, AuditStep)}


def build_steps(services: Services,
                names: tuple[str, ...] = PIPELINE) -> list[Step]:
    return [STEP_CLASSES[name](services) for name in names]


def run_steps(steps: list[Step], context: MessageContext) -> None:
    """Run the steps in order until one marks the message finished."""
    for step in steps:
        if context.finished:
            return
        step.process(context)
