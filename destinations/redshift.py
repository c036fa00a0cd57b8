"""Redshift destination: each batch staged in the intermediate bucket, listed in a manifest,
then loaded by COPY (into Amazon Redshift from S3, or into PostgreSQL through STDIN).

Firehose files no error records for Redshift: a load still failing when its retry window is over
leaves its manifest under `<Prefix>errors/manifests/` for a manual backfill, and the stream moves
on. The stream cannot do that, so the window is kept here, from each batch's first load attempt;
the section gives the stream a retry policy without a deadline (staging is retried until it works).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

import orjson

from destinations.objectstore import ObjectStore
from destinations.redshift_load import Loader, StagedObject, build_loader
from destinations.s3 import S3Destination
from firehose.batch import Batch
from firehose.config import RedshiftConfiguration
from firehose.destination import DELIVERED, DeliveryResult, DestinationCounters
from firehose.errors import DeliveryError
from firehose.keys import ObjectKeyFormat

log = logging.getLogger(__name__)

MANIFESTS = "manifests/"
FAILED_MANIFESTS = "errors/manifests/"


def manifest_body(objects: list[StagedObject]) -> bytes:
    """The manifest COPY reads: every object mandatory, so a missing one fails the load."""
    entries = [{"url": staged.url, "mandatory": True} for staged in objects]
    return orjson.dumps({"entries": entries})


class RedshiftDestination:
    """Stage, write the manifest, load; a load failing past the window files its manifest under
    errors/ and counts as handled. Loads run one at a time, in order: the stream is serial."""

    kind = "Redshift"

    def __init__(
        self,
        stream_name: str,
        config: RedshiftConfiguration,
        store: ObjectStore,
        *,
        encoder: Executor | None = None,
        loader: Loader | None = None,
        version: int = 1,
    ) -> None:
        self.config = config
        self.store = store
        staging = config.s3_configuration
        self.bucket = staging.bucket
        self.staging = S3Destination(stream_name, staging, store, encoder=encoder, version=version)
        self._encoder = encoder
        self.manifest_keys = self._keys(stream_name, version, staging.prefix + MANIFESTS)
        self.failed_keys = self._keys(stream_name, version, staging.prefix + FAILED_MANIFESTS)
        self.loader = loader or build_loader(config)
        self.window = float(config.retry_options.duration_in_seconds)
        self.target = f"{self.loader.target} staged in s3://{self.bucket} at {store.description}"
        self.counters = DestinationCounters(self.kind)
        self.failed_loads = 0  # loads given up on: their manifests are under errors/
        # Per batch (object_id): when its first load was tried, and what it staged.
        self._first_load: dict[str, float] = {}
        self._staged: dict[str, tuple[str, StagedObject]] = {}

    @staticmethod
    def _keys(stream_name: str, version: int, prefix: str) -> ObjectKeyFormat:
        return ObjectKeyFormat(stream_name=stream_name, version=version, prefix=prefix)

    async def start(self) -> None:
        await self.store.start()

    async def deliver(self, batch: Batch) -> DeliveryResult:
        manifest_key, staged = await self._stage(batch)
        first = self._first_load.setdefault(batch.object_id, time.monotonic())
        try:
            await self.loader.load(f"s3://{self.bucket}/{manifest_key}", [staged])
        except DeliveryError as exc:
            if time.monotonic() - first < self.window:
                raise
            await self._file_failed(batch, manifest_key, exc)
        self._forget(batch)
        return DELIVERED

    async def _stage(self, batch: Batch) -> tuple[str, StagedObject]:
        """Upload the batch and its manifest once; a retried load reuses them."""
        known = self._staged.get(batch.object_id)
        if known is not None:
            return known
        key = self.staging.object_key(batch)
        codec = self.staging.codec
        entry_name = key.rsplit("/", 1)[-1].removesuffix(codec.extension)
        body = await asyncio.get_running_loop().run_in_executor(
            self._encoder, codec.compress, batch.chunks(), entry_name
        )
        await self.store.put(self.bucket, key, body)
        staged = StagedObject(self.bucket, key, body)
        manifest_key = self._manifest_key(self.manifest_keys, batch)
        await self.store.put(self.bucket, manifest_key, manifest_body([staged]))
        self._staged[batch.object_id] = (manifest_key, staged)
        return manifest_key, staged

    @staticmethod
    def _manifest_key(keys: ObjectKeyFormat, batch: Batch) -> str:
        assert batch.oldest_arrival_ms is not None
        return keys.object_key(batch.oldest_arrival_ms, batch.object_id)

    async def _file_failed(self, batch: Batch, manifest_key: str, error: DeliveryError) -> None:
        """The window is over: the manifest goes under errors/ (raising, to be retried, while
        that write fails) and the batch counts as handled."""
        _, staged = self._staged[batch.object_id]
        failed_key = self._manifest_key(self.failed_keys, batch)
        await self.store.put(self.bucket, failed_key, manifest_body([staged]))
        self.failed_loads += 1
        self.counters.failed_records += batch.record_count
        log.error(
            "%s: load of s3://%s/%s given up after its %gs retry window (%s); its manifest is "
            "s3://%s/%s for a manual load",
            self.kind,
            self.bucket,
            manifest_key,
            self.window,
            error,
            self.bucket,
            failed_key,
        )

    def _forget(self, batch: Batch) -> None:
        self._first_load.pop(batch.object_id, None)
        self._staged.pop(batch.object_id, None)

    async def close(self) -> None:
        await self.loader.close()
        await self.store.close()
