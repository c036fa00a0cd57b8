"""Redshift destination: each batch staged in the intermediate bucket, listed in a manifest,
and loaded by COPY: into Amazon Redshift from S3 once both are uploaded, or into PostgreSQL
through STDIN from memory while they are, its rows committed once they are.

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
from dataclasses import dataclass

import orjson

from destinations.objectstore import ObjectStore
from destinations.redshift_load import BeforeCommit, Loader, StagedObject, build_loader
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


class _StagingFailed(Exception):
    """Raised to a load waiting to commit: the staging failed, so the load must not commit.
    Not a `DeliveryError`, so that it is never taken for a failed load."""


@dataclass
class _Progress:
    """One batch's steps across its attempts: a retry redoes only those that have not
    succeeded yet, so a committed load is never run twice and an upload not redone."""

    manifest_key: str
    staged: StagedObject
    object_put: bool = False
    manifest_put: bool = False
    loaded: bool = False
    first_load: float | None = None  # when its first load was tried: the retry window


@dataclass(frozen=True)
class _LoadFailure:
    """A failed load, and when: within the window from the batch's first load, it is retried."""

    error: DeliveryError
    first_load: float
    failed_at: float


class RedshiftDestination:
    """Stage (the object and the manifest), load; a load failing past the window files its
    manifest under errors/ and counts as handled. A load that reads S3 (Redshift) waits for the
    staging, one from memory (PostgreSQL) runs beside it and commits only once it is done:
    rows are never loaded from an object that is not staged. Loads run one at a time, in
    order: the stream is serial."""

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
        # Per batch (object_id) not yet handled: what its attempts did so far.
        self._progress: dict[str, _Progress] = {}

    @staticmethod
    def _keys(stream_name: str, version: int, prefix: str) -> ObjectKeyFormat:
        return ObjectKeyFormat(stream_name=stream_name, version=version, prefix=prefix)

    async def start(self) -> None:
        await self.store.start()

    async def deliver(self, batch: Batch) -> DeliveryResult:
        progress = await self._progress_of(batch)
        if self.loader.reads_staging:
            await self._stage(progress)  # Redshift reads the manifest and the object from S3
            failure = await self._load(progress)
        else:
            failure = await self._stage_while_loading(progress)
        if failure is not None:
            if failure.failed_at - failure.first_load < self.window:
                raise failure.error
            await self._file_failed(batch, progress, failure.error)
        self._progress.pop(batch.object_id, None)
        return DELIVERED

    async def _progress_of(self, batch: Batch) -> _Progress:
        """The batch's progress: its object encoded at its first attempt, reused by retries."""
        known = self._progress.get(batch.object_id)
        if known is not None:
            return known
        key = self.staging.object_key(batch)
        codec = self.staging.codec
        entry_name = key.rsplit("/", 1)[-1].removesuffix(codec.extension)
        body = await asyncio.get_running_loop().run_in_executor(
            self._encoder, codec.compress, batch.chunks(), entry_name
        )
        staged = StagedObject(self.bucket, key, body)
        progress = _Progress(self._manifest_key(self.manifest_keys, batch), staged)
        self._progress[batch.object_id] = progress
        return progress

    async def _stage_while_loading(self, progress: _Progress) -> _LoadFailure | None:
        """The load streams the bytes from memory while they are uploaded and commits once
        they are. A failed staging (retried without a deadline) is raised, and the load is then
        redone only if it did not commit."""
        staging = asyncio.ensure_future(self._stage(progress))
        try:
            try:
                failure = await self._load(progress, lambda: _staged(staging))
            except _StagingFailed:
                failure = None  # rolled back; the staging's own error is raised below
            await staging
        except BaseException:
            staging.cancel()  # a bug or a cancelled delivery: no upload left behind running
            raise
        return failure

    async def _stage(self, progress: _Progress) -> None:
        """Upload the object and its manifest side by side, each until it worked once."""
        puts = []
        if not progress.object_put:
            puts.append(self._put_object(progress))
        if not progress.manifest_put:
            puts.append(self._put_manifest(progress))
        for outcome in await asyncio.gather(*puts, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _put_object(self, progress: _Progress) -> None:
        staged = progress.staged
        await self.store.put(staged.bucket, staged.key, staged.body)
        progress.object_put = True

    async def _put_manifest(self, progress: _Progress) -> None:
        await self.store.put(self.bucket, progress.manifest_key, manifest_body([progress.staged]))
        progress.manifest_put = True

    async def _load(
        self, progress: _Progress, before_commit: BeforeCommit | None = None
    ) -> _LoadFailure | None:
        """The load, unless an earlier attempt committed it; its failure is returned."""
        if progress.loaded:
            return None
        if progress.first_load is None:
            progress.first_load = time.monotonic()
        manifest_url = f"s3://{self.bucket}/{progress.manifest_key}"
        try:
            await self.loader.load(manifest_url, [progress.staged], before_commit)
        except DeliveryError as exc:
            return _LoadFailure(exc, progress.first_load, time.monotonic())
        progress.loaded = True
        return None

    @staticmethod
    def _manifest_key(keys: ObjectKeyFormat, batch: Batch) -> str:
        assert batch.oldest_arrival_ms is not None
        return keys.object_key(batch.oldest_arrival_ms, batch.object_id)

    async def _file_failed(self, batch: Batch, progress: _Progress, error: DeliveryError) -> None:
        """The window is over: the manifest goes under errors/ (raising, to be retried, while
        that write fails) and the batch counts as handled."""
        failed_key = self._manifest_key(self.failed_keys, batch)
        await self.store.put(self.bucket, failed_key, manifest_body([progress.staged]))
        self.failed_loads += 1
        self.counters.failed_records += batch.record_count
        log.error(
            "%s: load of s3://%s/%s given up after its %gs retry window (%s); its manifest is "
            "s3://%s/%s for a manual load",
            self.kind,
            self.bucket,
            progress.manifest_key,
            self.window,
            error,
            self.bucket,
            failed_key,
        )

    async def close(self) -> None:
        await self.loader.close()
        await self.store.close()


async def _staged(staging: asyncio.Future[None]) -> None:
    """Wait for the staging without cancelling it; its failure as `_StagingFailed`."""
    try:
        await asyncio.shield(staging)
    except Exception as exc:
        raise _StagingFailed from exc
