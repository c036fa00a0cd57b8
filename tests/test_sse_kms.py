"""SSE-KMS on the wire: the headers each S3 call of the store sends, and what the store (moto's
S3; SeaweedFS refuses aws:kms without a KMS of its own) keeps of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from destinations.objectstore import MULTIPART_THRESHOLD, S3ObjectStore, SharedObjectStores
from firehose.testing.servers import S3Server

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SSE = "x-amz-server-side-encryption"
SSE_KEY = "x-amz-server-side-encryption-aws-kms-key-id"


@pytest.fixture
async def store(
    moto_s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[S3ObjectStore, list[tuple[str, dict[str, str]]]]]:
    """A store on moto's S3, and the (operation, headers) of every request it sends."""
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    store = S3ObjectStore(moto_s3.endpoint_url)
    await store.start()
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, **kwargs: Any) -> None:
        sent.append((kwargs["event_name"].split(".")[-1], dict(request.headers)))

    store._client.meta.events.register("before-send.s3", record)
    yield store, sent
    await store.close()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def headers_of(sent: list[tuple[str, dict[str, str]]], operation: str) -> list[dict[str, str]]:
    return [
        {name.lower(): _text(value) for name, value in headers.items()}
        for op, headers in sent
        if op == operation
    ]


async def test_put_object_asks_for_sse_kms_only_when_told(
    store: tuple[S3ObjectStore, list[tuple[str, dict[str, str]]]], moto_s3: S3Server
) -> None:
    s3, sent = store
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    await s3.put(bucket, "sealed", b"x" * 100, kms_key_arn=KEY)
    await s3.put(bucket, "plain", b"y" * 100)
    sealed, plain = headers_of(sent, "PutObject")
    assert (sealed[SSE], sealed[SSE_KEY]) == ("aws:kms", KEY)
    assert SSE not in plain and SSE_KEY not in plain

    client = moto_s3.client()
    head = client.head_object(Bucket=bucket, Key="sealed")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KEY)
    assert "ServerSideEncryption" not in client.head_object(Bucket=bucket, Key="plain")


async def test_a_multipart_upload_asks_for_it_when_created(
    store: tuple[S3ObjectStore, list[tuple[str, dict[str, str]]]], moto_s3: S3Server
) -> None:
    s3, sent = store
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    await s3.put(bucket, "big", b"z" * (MULTIPART_THRESHOLD + 1), kms_key_arn=KEY)
    [created] = headers_of(sent, "CreateMultipartUpload")
    assert (created[SSE], created[SSE_KEY]) == ("aws:kms", KEY)
    parts = headers_of(sent, "UploadPart")
    assert len(parts) == 3 and all(SSE not in part for part in parts)
    assert headers_of(sent, "PutObject") == []

    head = moto_s3.client().head_object(Bucket=bucket, Key="big")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KEY)
    assert head["ContentLength"] == MULTIPART_THRESHOLD + 1


async def test_shared_store_handles_keep_their_own_location_keys(
    moto_s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    stores = SharedObjectStores()
    sealed = stores.get(moto_s3.endpoint_url, region="us-east-1", kms_key_arn=KEY)
    plain = stores.get(moto_s3.endpoint_url, region="us-east-1")
    for handle in (sealed, plain):
        await handle.start()
    await sealed.put(bucket, "a", b"1")
    await plain.put(bucket, "b", b"2")
    for handle in (sealed, plain):
        await handle.close()
    client = moto_s3.client()
    assert client.head_object(Bucket=bucket, Key="a")["SSEKMSKeyId"] == KEY
    assert "SSEKMSKeyId" not in client.head_object(Bucket=bucket, Key="b")
