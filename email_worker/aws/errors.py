"""Translate botocore exceptions into the worker's own errors."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from email_worker.errors import AwsError, ObjectNotFoundError, \
    TemporaryAwsError

_MISSING_OBJECT_CODES = {"NoSuchKey", "404", "NotFound"}


def wrap_aws_error(service: str, operation: str,
                   exc: Exception) -> AwsError:
    """Return the worker error for a failed call.

    A missing S3 key can never succeed on retry.  Every other failure,
    including AccessDenied, a missing bucket or a missing table, is
    treated as temporary, because mail must not be dropped while an
    operator fixes permissions or creates a resource.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = str(error.get("Message", "")) or code
        if service == "s3" and code in _MISSING_OBJECT_CODES:
            return ObjectNotFoundError(service, operation, "NoSuchKey",
                                       detail)
        return TemporaryAwsError(service, operation, code, detail)
    if isinstance(exc, BotoCoreError):
        return TemporaryAwsError(service, operation,
                                 type(exc).__name__, str(exc))
    raise TypeError(f"not an AWS error: {exc!r}")


AWS_EXCEPTIONS = (ClientError, BotoCoreError)


def call_aws(service: str, operation: str, method: Any,
             **params: Any) -> Any:
    """Call a boto3 client method; raise the worker's error on failure."""
    try:
        return method(**params)
    except AWS_EXCEPTIONS as exc:
        raise wrap_aws_error(service, operation, exc) from exc
