"""Exceptions raised by the worker.

Every error derives from WorkerError.  The poller decides what happens to
the SQS message from the class alone: a TemporaryError releases it for a
later retry, a PoisonMessageError counts towards MAX_RECEIVE_COUNT.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of every error the worker raises on purpose."""


class ConfigError(WorkerError):
    """A setting is missing or invalid.

    ``variable`` is the environment variable to fix.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class TemporaryError(WorkerError):
    """The message could not be finished now but may succeed later.

    ``retry_after`` overrides the growing retry delay, in seconds.
    """

    retry_after: int | None = None


class BounceNotTrackedError(TemporaryError):
    """A DSN arrived before the bounce-tracking Lambda stored its item."""

    def __init__(self, message_id: str, retry_after: int) -> None:
        super().__init__(f"no bounce item for SES message {message_id} yet")
        self.retry_after = retry_after


class PoisonMessageError(WorkerError):
    """The SQS body or the object it names can never be processed."""


class AwsError(WorkerError):
    """An AWS call failed; ``code`` is the AWS error code."""

    def __init__(self, service: str, operation: str, code: str,
                 detail: str) -> None:
        super().__init__(f"{service} {operation} failed: {code}: {detail}")
        self.service = service
        self.operation = operation
        self.code = code


class TemporaryAwsError(AwsError, TemporaryError):
    """An AWS call failed in a way that a retry may fix."""


class ObjectNotFoundError(AwsError, PoisonMessageError):
    """The S3 object that a notification names does not exist."""
