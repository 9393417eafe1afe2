"""State of one message as it moves through the pipeline steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email_worker.aws.dynamodb import RecipientRules
from email_worker.aws.s3 import StoredObject
from email_worker.logs import MessageLogger
from email_worker.mail.notification import Notification


@dataclass
class MessageContext:
    """The state that the steps read and decide for one message.

    ``recipients`` starts as every recipient in the queue's domain and
    shrinks as steps remove blocked ones.  ``finished`` ends the pipeline
    early, for example for a message that was already processed.
    ``body`` is the raw message that delivery sends; a step that must
    change header bytes replaces it.
    """

    domain: str
    notification: Notification
    bucket: str
    log: MessageLogger
    receive_count: int = 1
    stored: StoredObject | None = None
    body: bytes = b""
    headers: Message | None = None
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    rules: RecipientRules = field(default_factory=RecipientRules)
    blocked: dict[str, str] = field(default_factory=dict)
    already_delivered: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    audit: dict[str, str] = field(default_factory=dict)
    is_dsn: bool = False
    already_forwarded: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    status: str | None = None
    finished: bool = False

    @property
    def pending(self) -> list[str]:
        """Recipients still to deliver on this attempt."""
        done = set(self.already_delivered)
        return [r for r in self.recipients if r not in done]
