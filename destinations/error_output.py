"""The error output: records given up on, written as Firehose's error records to S3.

One object per error-output-type per `write`, under the S3 location's `ErrorOutputPrefix` (or
`<Prefix><error-output-type>/yyyy/MM/dd/HH/` without one), named like data objects, compressed
with the location's `CompressionFormat` (whose extension it takes: a `FileExtension` names data
objects, which error records are not). The record shapes live in `destinations/error_records.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from destinations.error_records import error_lines
from destinations.objectstore import ObjectStore
from firehose.compression import Codec, get_codec
from firehose.config import S3Configuration
from firehose.destination import FailedRecord
from firehose.errors import DeliveryError
from firehose.keys import KeyTooLongError, ObjectKeyFormat


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def error_object_id(stream_name: str, output_type: str, failures: Sequence[FailedRecord]) -> str:
    """A uuid4-shaped id fixed by which records failed, so a retried write overwrites its object
    instead of leaving a second copy."""
    digest = hashlib.sha256(f"{stream_name}\0{output_type}\0".encode())
    for failure in failures:
        digest.update(f"{failure.record.seq}.{failure.record.sub_seq},".encode())
    return str(uuid.UUID(bytes=digest.digest()[:16], version=4))


def group_by_output_type(
    failures: Sequence[FailedRecord],
) -> dict[str, list[FailedRecord]]:
    """Failures by output type, types and records in the order given."""
    groups: dict[str, list[FailedRecord]] = {}
    for failure in failures:
        groups.setdefault(failure.output_type, []).append(failure)
    return groups


def _encode(
    codec: Codec, failures: Sequence[FailedRecord], attempts: int, now: int, entry_name: str
) -> bytes:
    return codec.compress([error_lines(failures, attempts=attempts, now_ms=now)], entry_name)


class S3ErrorOutput:
    """`firehose.destination.ErrorOutput` over an S3 location: a destination's own bucket, or a
    destination's backup `S3Configuration`.

    `write` starts the store on first use; `close` releases it (call it when the stream closes).
    """

    def __init__(
        self,
        stream_name: str,
        location: S3Configuration,
        store: ObjectStore,
        *,
        encoder: Executor | None = None,
        version: int = 1,
        clock: Callable[[], int] = now_ms,
        dynamic_partitioning: bool = False,
    ) -> None:
        self.stream_name = stream_name
        self.bucket = location.bucket
        self.store = store
        self.codec = get_codec(location.compression_format)
        self.keys = ObjectKeyFormat(
            stream_name=stream_name,
            version=version,
            prefix=location.prefix,
            error_output_prefix=location.error_output_prefix,
            extension=self.codec.extension,
            time_zone=location.key_time_zone,
            dynamic_partitioning=dynamic_partitioning,
        )
        self.target = f"s3://{self.bucket} at {store.description}"
        self._encoder = encoder
        self._clock = clock
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self.store.start()
            self._started = True

    def object_key(self, output_type: str, failures: Sequence[FailedRecord]) -> str:
        """The key of the object holding `failures`, all of `output_type`."""
        oldest = min(failure.record.arrival_ms for failure in failures)
        object_id = error_object_id(self.stream_name, output_type, failures)
        try:
            return self.keys.error_key(output_type, oldest, object_id)
        except KeyTooLongError as exc:
            raise DeliveryError(str(exc), retriable=False, code="S3.KeyTooLong") from exc

    async def write(self, failures: Sequence[FailedRecord], *, attempts: int) -> None:
        """Store `failures` as error records; returns once every object is stored."""
        if not failures:
            return
        await self.start()
        now = self._clock()
        loop = asyncio.get_running_loop()
        for output_type, group in group_by_output_type(failures).items():
            key = self.object_key(output_type, group)
            entry_name = key.rsplit("/", 1)[-1].removesuffix(self.codec.extension)
            # Base64, JSON and compression of many records: off the loop, as for data objects.
            body = await loop.run_in_executor(
                self._encoder, _encode, self.codec, group, attempts, now, entry_name
            )
            await self.store.put(self.bucket, key, body)

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self.store.close()
