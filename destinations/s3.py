"""Extended S3 destination: one object per batch, keyed and compressed exactly as Firehose does.

With dynamic partitioning a batch holds one partition's records, and its prefix is evaluated
with that partition's keys (`Batch.partition`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from destinations.objectstore import ObjectStore
from firehose.batch import Batch
from firehose.compression import get_codec
from firehose.config import S3Configuration
from firehose.destination import DELIVERED, DeliveryResult, DestinationCounters
from firehose.errors import DeliveryError
from firehose.keys import (
    PARTITION_KEY_FROM_LAMBDA,
    PARTITION_KEY_FROM_QUERY,
    KeyTooLongError,
    MissingPartitionKeyError,
    ObjectKeyFormat,
    partition_key_maps,
)


class S3Destination:
    """Concatenates a batch's records (no delimiter), compresses them off the loop, uploads."""

    kind = "S3"

    def __init__(
        self,
        stream_name: str,
        config: S3Configuration,
        store: ObjectStore,
        *,
        encoder: Executor | None = None,
        version: int = 1,
        dynamic_partitioning: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.codec = get_codec(config.compression_format)
        self.keys = ObjectKeyFormat(
            stream_name=stream_name,
            version=version,
            prefix=config.prefix,
            error_output_prefix=config.error_output_prefix,
            extension=config.extension,
            time_zone=config.key_time_zone,
            dynamic_partitioning=dynamic_partitioning,
        )
        self._encoder = encoder
        self.target = f"s3://{config.bucket} at {store.description}"
        self.counters = DestinationCounters(self.kind)

    async def start(self) -> None:
        await self.store.start()

    def object_key(self, batch: Batch) -> str:
        assert batch.oldest_arrival_ms is not None
        keys = partition_key_maps(batch.partition)
        try:
            return self.keys.object_key(
                batch.oldest_arrival_ms,
                batch.object_id,
                partition_keys=keys[PARTITION_KEY_FROM_QUERY],
                lambda_partition_keys=keys[PARTITION_KEY_FROM_LAMBDA],
            )
        except (KeyTooLongError, MissingPartitionKeyError) as exc:
            # The router checks both per record, so this is a bug, never a record's fault.
            raise DeliveryError(str(exc), retriable=False, code="S3.KeyTooLong") from exc

    async def deliver(self, batch: Batch) -> DeliveryResult:
        key = self.object_key(batch)
        entry_name = key.rsplit("/", 1)[-1].removesuffix(self.codec.extension)
        body = await asyncio.get_running_loop().run_in_executor(
            self._encoder, self.codec.compress, batch.chunks(), entry_name
        )
        await self.store.put(self.config.bucket, key, body)
        return DELIVERED

    async def close(self) -> None:
        await self.store.close()
