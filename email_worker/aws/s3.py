"""Read stored messages and write their audit metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from email_worker.aws.errors import AWS_EXCEPTIONS, call_aws, \
    wrap_aws_error

# Object settings that a REPLACE copy would reset unless sent again.
_PRESERVED = {
    "ContentType": "ContentType",
    "ContentEncoding": "ContentEncoding",
    "ContentDisposition": "ContentDisposition",
    "ContentLanguage": "ContentLanguage",
    "CacheControl": "CacheControl",
    "ServerSideEncryption": "ServerSideEncryption",
    "SSEKMSKeyId": "SSEKMSKeyId",
    "StorageClass": "StorageClass",
}


@dataclass
class StoredObject:
    """A message as stored in S3, with what is needed to rewrite it."""

    bucket: str
    key: str
    body: bytes
    metadata: dict[str, str]
    etag: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


class MessageStore:
    """S3 access for raw messages; errors become AwsError."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def fetch(self, bucket: str, key: str) -> StoredObject:
        """Download an object as bytes, with its metadata."""
        response = call_aws("s3", "GetObject", self._client.get_object,
                            Bucket=bucket, Key=key)
        try:
            body = response["Body"].read()
        except AWS_EXCEPTIONS as exc:
            raise wrap_aws_error("s3", "GetObject", exc) from exc
        finally:
            response["Body"].close()
        settings = {param: str(response[name])
                    for name, param in _PRESERVED.items()
                    if response.get(name)}
        return StoredObject(
            bucket=bucket, key=key, body=body,
            metadata=dict(response.get("Metadata", {})),
            etag=response.get("ETag"), settings=settings)

    def replace_metadata(self, stored: StoredObject,
                         metadata: dict[str, str]) -> None:
        """Replace the object's user metadata by copying it onto itself.

        The copy resends Content-Type and the other object settings,
        which REPLACE would otherwise reset, and is conditional on the
        ETag read by fetch so that a concurrent change is not clobbered.
        """
        params: dict[str, Any] = dict(stored.settings)
        if params.get("StorageClass") == "STANDARD":
            del params["StorageClass"]
        if stored.etag:
            params["CopySourceIfMatch"] = stored.etag
        response = call_aws(
            "s3", "CopyObject", self._client.copy_object,
            Bucket=stored.bucket, Key=stored.key,
            CopySource={"Bucket": stored.bucket, "Key": stored.key},
            MetadataDirective="REPLACE", Metadata=metadata, **params)
        stored.metadata = dict(metadata)
        stored.etag = response.get("CopyObjectResult", {}).get("ETag")

    def delete(self, bucket: str, key: str) -> None:
        call_aws("s3", "DeleteObject", self._client.delete_object,
                 Bucket=bucket, Key=key)
