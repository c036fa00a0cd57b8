"""The storage boundary: put plain bytes under a bucket and key, in S3 or in a local folder.

Destinations build keys and bodies; stores only move bytes. Lower-level errors (botocore, OSError)
become `DeliveryError` here, with `retriable` saying whether trying again can help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from firehose.durable import replace_durably
from firehose.errors import DeliveryError
from firehose.loopthread import LoopThread

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4
# S3 answers these when retrying cannot help until someone changes something.
PERMANENT_S3_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccountProblem",
        "AllAccessDisabled",
        "InvalidPayer",
        "NotSignedUp",
        "MethodNotAllowed",
        "InvalidBucketName",
    }
)


class ObjectStore(Protocol):
    """Where objects go. `put` is atomic: readers see the whole object or none of it.

    With `kms_key_arn`, the object is stored encrypted with SSE-KMS under that key; without,
    no encryption is asked for and the bucket's default applies.
    """

    description: str

    async def start(self) -> None: ...

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None: ...

    async def close(self) -> None: ...


class LocalObjectStore:
    """Objects as files under `<root>/<bucket>/<key>`: the embedded default, no server needed."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.description = f"file://{self.root}"

    async def start(self) -> None:
        return None

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None:
        # A folder has no server-side encryption: `kms_key_arn` has nothing to ask for here.
        # S3 keys may hold `.` and `..` segments; a folder may not, so they are escaped.
        segments = [_escape_dots(segment) for segment in key.split("/")]
        path = self.root.joinpath(bucket, *segments)
        try:
            await asyncio.get_running_loop().run_in_executor(None, replace_durably, path, body)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc}", code="Local.IOError") from exc

    async def close(self) -> None:
        return None


def _escape_dots(segment: str) -> str:
    return segment.replace(".", "%2E") if segment and set(segment) == {"."} else segment


def _delivery_error(exc: Exception, what: str) -> DeliveryError:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return DeliveryError(
            f"{what}: {code}: {message}",
            code=f"S3.{code}",
            retriable=code not in PERMANENT_S3_CODES,
        )
    return DeliveryError(f"{what}: {exc}", code="S3.ConnectionFailed")


class S3ObjectStore:
    """Any S3-compatible store through aiobotocore; multipart upload for large objects.

    With no endpoint URL, botocore resolves one the standard way (`AWS_ENDPOINT_URL_S3`,
    `AWS_ENDPOINT_URL`, then AWS itself), and credentials come from the usual `AWS_*` chain.
    """

    def __init__(self, endpoint_url: str | None = None, *, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or region
        custom = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        self.description = custom or "AWS S3"
        self._config = AioConfig(
            # S3-compatible stores (SeaweedFS, MinIO, …) want path-style addressing.
            s3={"addressing_style": "path" if custom else "auto"},
            # No retries here: the stream retries a whole delivery by its destination's policy,
            # one retry layer instead of three nested ones.
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            # Shared by every stream writing to this endpoint.
            max_pool_connections=32,
            # Checksums only where S3 requires them: older S3-compatible stores refuse the rest.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._io = LoopThread("s3-io")

    async def start(self) -> None:
        """Build the client now: loading botocore's models takes ~0.1 s of a loop."""
        await self._io.run(self._s3())

    async def _s3(self) -> Any:
        if self._client is None:
            session = get_session()
            self._client = await self._stack.enter_async_context(
                session.create_client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=self._config,
                )
            )
        return self._client

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None:
        await self._io.run(self._put(bucket, key, body, sse_kms(kms_key_arn)))

    async def _put(self, bucket: str, key: str, body: bytes, sse: dict[str, str]) -> None:
        if len(body) >= MULTIPART_THRESHOLD:
            await self._put_multipart(bucket, key, body, sse)
        else:
            await self._call("PutObject", bucket, key, Body=body, **sse)

    async def _call(self, operation: str, bucket: str, key: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 call, its errors mapped to ours."""
        client = await self._s3()
        method = getattr(client, _snake(operation))
        try:
            answer: dict[str, Any] = await method(Bucket=bucket, Key=key, **kwargs)
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
            raise _delivery_error(exc, f"{operation} s3://{bucket}/{key}") from exc
        return answer

    async def _put_multipart(self, bucket: str, key: str, body: bytes, sse: dict[str, str]) -> None:
        # The upload's encryption is set when it is created; its parts need no header of it.
        created = await self._call("CreateMultipartUpload", bucket, key, **sse)
        upload_id = created["UploadId"]
        view = memoryview(body)
        limit = asyncio.Semaphore(PART_CONCURRENCY)

        async def upload(number: int, start: int) -> dict[str, Any]:
            async with limit:
                part = view[start : start + PART_SIZE]
                answer = await self._call(
                    "UploadPart",
                    bucket,
                    key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(part),
                )
                return {"PartNumber": number, "ETag": answer["ETag"]}

        try:
            # A task group cancels the other parts as soon as one fails, so none is still
            # being written when the upload is aborted.
            async with asyncio.TaskGroup() as group:
                uploads = [
                    group.create_task(upload(number, start))
                    for number, start in enumerate(range(0, len(body), PART_SIZE), 1)
                ]
            await self._call(
                "CompleteMultipartUpload",
                bucket,
                key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [task.result() for task in uploads]},
            )
        except BaseException as exc:
            with contextlib.suppress(DeliveryError):
                await self._call("AbortMultipartUpload", bucket, key, UploadId=upload_id)
            if isinstance(exc, BaseExceptionGroup):
                raise exc.exceptions[0] from None
            raise

    async def close(self) -> None:
        if self._client is not None:
            await self._io.run(self._stack.aclose())
            self._client = None
        self._io.stop()


def sse_kms(kms_key_arn: str | None) -> dict[str, str]:
    """The PutObject / CreateMultipartUpload arguments that ask for SSE-KMS, or none."""
    if kms_key_arn is None:
        return {}
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def open_object_store(endpoint_url: str | None, *, region: str) -> ObjectStore:
    """A store for `endpoint_url`: `file://DIR` is a local folder, anything else S3."""
    if endpoint_url and endpoint_url.startswith("file://"):
        return LocalObjectStore(Path(endpoint_url.removeprefix("file://")))
    return S3ObjectStore(endpoint_url, region=region)


class SharedObjectStores:
    """One store per endpoint for the whole service: streams writing to the same store share
    its client, connection pool and upload thread (each costs megabytes and a thread)."""

    def __init__(self) -> None:
        self._stores: dict[tuple[str | None, str], _SharedStore] = {}

    def get(
        self, endpoint_url: str | None, *, region: str, kms_key_arn: str | None = None
    ) -> ObjectStore:
        """A handle on the store for `endpoint_url`, whose puts ask for SSE-KMS under
        `kms_key_arn` if given."""
        key = (endpoint_url, region)
        shared = self._stores.get(key)
        if shared is None:
            store = open_object_store(endpoint_url, region=region)
            shared = _SharedStore(store, forget=lambda: self._stores.pop(key, None))
            self._stores[key] = shared
        return _StoreHandle(shared, kms_key_arn)


class _SharedStore:
    """A store started by its first user and closed by its last (then a new one is made)."""

    def __init__(self, store: ObjectStore, forget: Callable[[], object]) -> None:
        self.store = store
        self.users = 0
        self._forget = forget
        self._started: asyncio.Future[None] | None = None

    async def acquire(self) -> None:
        self.users += 1
        if self._started is None or (self._started.done() and self._started.exception()):
            self._started = asyncio.ensure_future(self.store.start())
        await asyncio.shield(self._started)

    async def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self._forget()
            await self.store.close()


class _StoreHandle:
    """One stream's use of a shared store, for one S3 location (and its encryption)."""

    def __init__(self, shared: _SharedStore, kms_key_arn: str | None) -> None:
        self._shared = shared
        self.kms_key_arn = kms_key_arn
        self.description = shared.store.description
        self._acquired = False

    async def start(self) -> None:
        if not self._acquired:
            self._acquired = True
            await self._shared.acquire()

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None:
        kms_key_arn = kms_key_arn or self.kms_key_arn
        await self._shared.store.put(bucket, key, body, kms_key_arn=kms_key_arn)

    async def close(self) -> None:
        if self._acquired:
            self._acquired = False
            await self._shared.release()
