"""Objects are read as bytes and their metadata is replaced in place."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import EndpointConnectionError

from email_worker.aws.s3 import MessageStore, StoredObject
from email_worker.errors import (ObjectNotFoundError, PoisonMessageError,
                                 TemporaryAwsError)
from email_worker.mail.metadata import merge_metadata
from tests.unit.support import client_error

BUCKET = "example-com-emails"
KEY = "inbound/k9p346n3d25rq4f5r37e3p3e28iq97jb6cn64301"
RAW = b"From: dave@example.net\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n"


class ClosableBody(io.BytesIO):
    closed_by_caller = False

    def close(self):
        self.closed_by_caller = True
        super().close()


class StubS3:
    def __init__(self, get_response=None, error=None):
        self.get_response = get_response or {}
        self.error = error
        self.calls = []

    def _record(self, name, params):
        self.calls.append((name, params))
        if self.error is not None:
            raise self.error

    def get_object(self, **params):
        self._record("get_object", params)
        return self.get_response

    def copy_object(self, **params):
        self._record("copy_object", params)
        return {"CopyObjectResult": {"ETag": '"etag-2"'}}

    def delete_object(self, **params):
        self._record("delete_object", params)
        return {}

    def params(self, name):
        return [params for call, params in self.calls if call == name][-1]


def get_response(**extra):
    response = {"Body": ClosableBody(RAW), "ETag": '"etag-1"',
                "ContentType": "message/rfc822",
                "Metadata": {"x-amz-key-v2": "c2VjcmV0", "x-amz-iv": "aXY="}}
    response.update(extra)
    return response


def stored(**settings):
    return StoredObject(bucket=BUCKET, key=KEY, body=RAW,
                        metadata={"x-amz-key-v2": "c2VjcmV0"},
                        etag='"etag-1"', settings=dict(settings))


def test_fetch_returns_bytes_unchanged():
    client = StubS3(get_response())
    assert MessageStore(client).fetch(BUCKET, KEY).body == RAW


def test_fetch_closes_body():
    response = get_response()
    MessageStore(StubS3(response)).fetch(BUCKET, KEY)
    assert response["Body"].closed_by_caller


def test_fetch_reads_metadata_and_etag():
    result = MessageStore(StubS3(get_response())).fetch(BUCKET, KEY)
    assert result.metadata == {"x-amz-key-v2": "c2VjcmV0",
                               "x-amz-iv": "aXY="}
    assert result.etag == '"etag-1"'


def test_fetch_keeps_object_settings():
    response = get_response(CacheControl="no-cache",
                            ServerSideEncryption="aws:kms",
                            SSEKMSKeyId="arn:aws:kms:key/fixture")
    result = MessageStore(StubS3(response)).fetch(BUCKET, KEY)
    assert result.settings == {"ContentType": "message/rfc822",
                               "CacheControl": "no-cache",
                               "ServerSideEncryption": "aws:kms",
                               "SSEKMSKeyId": "arn:aws:kms:key/fixture"}


def test_fetch_without_metadata():
    response = get_response()
    del response["Metadata"]
    assert MessageStore(StubS3(response)).fetch(BUCKET, KEY).metadata == {}


def test_fetch_no_such_key_not_found():
    client = StubS3(error=client_error("NoSuchKey", "GetObject"))
    with pytest.raises(ObjectNotFoundError) as caught:
        MessageStore(client).fetch(BUCKET, KEY)
    assert caught.value.code == "NoSuchKey"


def test_fetch_not_found_is_poison():
    client = StubS3(error=client_error("NoSuchKey", "GetObject"))
    with pytest.raises(PoisonMessageError):
        MessageStore(client).fetch(BUCKET, KEY)


def test_fetch_access_denied_temporary():
    client = StubS3(error=client_error("AccessDenied", "GetObject"))
    with pytest.raises(TemporaryAwsError) as caught:
        MessageStore(client).fetch(BUCKET, KEY)
    assert caught.value.code == "AccessDenied"


def test_fetch_missing_bucket_temporary():
    client = StubS3(error=client_error("NoSuchBucket", "GetObject"))
    with pytest.raises(TemporaryAwsError):
        MessageStore(client).fetch(BUCKET, KEY)


def test_fetch_connection_error_temporary():
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    with pytest.raises(TemporaryAwsError):
        MessageStore(StubS3(error=error)).fetch(BUCKET, KEY)


def test_replace_copies_onto_itself():
    client = StubS3()
    MessageStore(client).replace_metadata(stored(), {"processed": "true"})
    params = client.params("copy_object")
    assert params["CopySource"] == {"Bucket": BUCKET, "Key": KEY}
    assert (params["Bucket"], params["Key"]) == (BUCKET, KEY)
    assert params["MetadataDirective"] == "REPLACE"


def test_replace_keeps_content_type():
    client = StubS3()
    MessageStore(client).replace_metadata(
        stored(ContentType="message/rfc822"), {"processed": "true"})
    assert client.params("copy_object")["ContentType"] == "message/rfc822"


def test_replace_keeps_encryption_settings():
    client = StubS3()
    MessageStore(client).replace_metadata(
        stored(ServerSideEncryption="aws:kms", SSEKMSKeyId="key-1"),
        {"processed": "true"})
    params = client.params("copy_object")
    assert params["ServerSideEncryption"] == "aws:kms"
    assert params["SSEKMSKeyId"] == "key-1"


def test_replace_omits_standard_storage_class():
    client = StubS3()
    MessageStore(client).replace_metadata(stored(StorageClass="STANDARD"),
                                          {"processed": "true"})
    assert "StorageClass" not in client.params("copy_object")


def test_replace_keeps_other_storage_class():
    client = StubS3()
    MessageStore(client).replace_metadata(
        stored(StorageClass="STANDARD_IA"), {"processed": "true"})
    assert client.params("copy_object")["StorageClass"] == "STANDARD_IA"


def test_replace_keeps_existing_keys_after_merge():
    client = StubS3(get_response())
    store = MessageStore(client)
    fetched = store.fetch(BUCKET, KEY)
    store.replace_metadata(fetched, merge_metadata(
        fetched.metadata, {"processed": "true"}, {}))
    metadata = client.params("copy_object")["Metadata"]
    assert metadata == {"x-amz-key-v2": "c2VjcmV0", "x-amz-iv": "aXY=",
                        "processed": "true"}


def test_replace_conditional_on_etag():
    client = StubS3()
    MessageStore(client).replace_metadata(stored(), {"processed": "true"})
    assert client.params("copy_object")["CopySourceIfMatch"] == '"etag-1"'


def test_replace_updates_stored_object():
    target = stored()
    MessageStore(StubS3()).replace_metadata(target, {"processed": "true"})
    assert target.metadata == {"processed": "true"}
    assert target.etag == '"etag-2"'


def test_replace_precondition_failed_temporary():
    client = StubS3(error=client_error("PreconditionFailed", "CopyObject"))
    with pytest.raises(TemporaryAwsError) as caught:
        MessageStore(client).replace_metadata(stored(), {"a": "b"})
    assert caught.value.operation == "CopyObject"


def test_delete_names_object():
    client = StubS3()
    MessageStore(client).delete(BUCKET, KEY)
    assert client.params("delete_object") == {"Bucket": BUCKET, "Key": KEY}
