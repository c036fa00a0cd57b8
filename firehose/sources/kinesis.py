"""`KinesisSource`: feeds a KinesisStreamAsSource delivery stream from its Kinesis data stream.

A coordinator task keeps the shard leases (create for new shards, renew, take by the balance
rule, release on stop) and runs one `ShardReader` per held shard whose parents are finished.
Checkpoints follow the delivered watermark (see `PositionTracker`), never the reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from firehose.sources.balance import leases_to_take
from firehose.sources.leases import Lease, LeaseStore
from firehose.sources.positions import SHARD_END, PositionTracker
from firehose.sources.shard_reader import ReadSettings, ShardCounters, ShardReader
from firehose.sources.shards import PAGE_SIZE, list_shards
from firehose.stream import DeliveryStream

log = logging.getLogger(__name__)

LIST_SHARDS_SECONDS = 10.0
# A hand-off stuck on an unanswered call must not hold up the service's shutdown.
STOP_SECONDS = 15.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class KinesisSource:
    def __init__(
        self,
        stream: DeliveryStream,
        kinesis_stream_name: str,
        open_clients: Callable[[], Any],
        make_store: Callable[[Any], LeaseStore],
        *,
        start_position: str = "LATEST",
        lease_seconds: float = 10.0,
        read: ReadSettings | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        """`open_clients()` gives an async context manager yielding (kinesis, dynamodb or
        None); `make_store(dynamodb)` the lease store."""
        self.name = f"kinesis:{kinesis_stream_name}->{stream.name}"
        self.stream = stream
        self.kinesis_stream_name = kinesis_stream_name
        self.open_clients = open_clients
        self.make_store = make_store
        self.start_position = start_position
        self.lease_seconds = lease_seconds
        self.read = read or ReadSettings()
        self.page_size = page_size
        self.me = worker_id()
        self.counters = ShardCounters()
        self.tracker = PositionTracker()
        self.held: dict[str, Lease] = {}
        self.readers: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[str, tuple[str | None, int, float]] = {}  # owner, counter, first seen
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listed_at = 0.0
        self._store: LeaseStore | None = None
        self._kinesis: Any = None

    def metrics(self) -> dict[str, float]:
        """This source's numbers under Firehose's metric names (re-reads included, as AWS's)."""
        behind = self.counters.millis_behind_latest.values()
        return {
            "DataReadFromKinesisStream.Records": self.counters.records,
            "DataReadFromKinesisStream.Bytes": self.counters.bytes,
            "KinesisMillisBehindLatest": max(behind, default=0),
        }

    async def start(self) -> None:
        self.tracker.delivered(self.stream.delivered_seq)
        self.stream.add_delivered_listener(self._on_delivered)
        self._task = asyncio.create_task(self._run(), name=f"source-{self.name}")

    async def stop(self) -> None:
        """Graceful hand-off: stop reading, checkpoint what is delivered, release the leases
        so that another instance takes them at once."""
        if self._task is None:
            return
        self._task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            log.warning("source %s: hand-off unfinished after %g s", self.name, STOP_SECONDS)

    def _on_delivered(self, seq: int) -> None:
        self.tracker.delivered(seq)
        self._wake.set()

    # -- the coordinator ------------------------------------------------------------------

    async def _run(self) -> None:
        pause = 1.0
        while True:
            try:
                async with self.open_clients() as (kinesis, dynamodb):
                    self._kinesis = kinesis
                    self._store = self.make_store(dynamodb)
                    await self._store.prepare()
                    try:
                        await self._coordinate()
                    finally:
                        await asyncio.shield(self._hand_off())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("source %s failed: %s; retrying in %.0f s", self.name, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def _coordinate(self) -> None:
        tick = self.lease_seconds / 3
        renewed_at = 0.0
        while True:
            now = time.monotonic()
            if now - self._listed_at >= LIST_SHARDS_SECONDS:
                await self._sync_shards()
            await self._checkpoint()
            if time.monotonic() - renewed_at >= tick:
                renewed_at = time.monotonic()
                await self._renew()
                await self._take()
            self._reap_readers()
            self._start_readers(await self._leases())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)

    async def _leases(self) -> list[Lease]:
        assert self._store is not None
        leases = await self._store.leases()
        now = time.monotonic()
        for lease in leases:
            seen = self._seen.get(lease.shard_id)
            if seen is None or seen[:2] != (lease.owner, lease.counter):
                self._seen[lease.shard_id] = (lease.owner, lease.counter, now)
        return leases

    def _expired(self, leases: list[Lease]) -> set[str]:
        now = time.monotonic()
        return {
            lease.shard_id
            for lease in leases
            if lease.owner is not None and now - self._seen[lease.shard_id][2] >= self.lease_seconds
        }

    async def _sync_shards(self) -> None:
        """New shards get a lease: at the start position, or from the start (TRIM_HORIZON)
        when their parents are read too, so nothing between parent and child is missed."""
        assert self._store is not None
        shards = await list_shards(self._kinesis, self.kinesis_stream_name, self.page_size)
        self._listed_at = time.monotonic()
        known = {shard.shard_id for shard in shards}
        existing = {lease.shard_id for lease in await self._store.leases()}
        for shard in shards:
            if shard.shard_id in existing:
                continue
            has_parent = any(parent in known or parent in existing for parent in shard.parents)
            start = "TRIM_HORIZON" if has_parent else self.start_position
            await self._store.create(Lease(shard.shard_id, start, shard.parents))

    async def _renew(self) -> None:
        assert self._store is not None
        for shard_id, lease in list(self.held.items()):
            renewed = await self._store.renew(lease)
            if renewed is None:
                log.info("source %s: lost the lease of shard %s", self.name, shard_id)
                self._lose(shard_id)
            else:
                self.held[shard_id] = renewed

    async def _take(self) -> None:
        assert self._store is not None
        leases = await self._leases()
        for lease in leases_to_take(leases, self.me, self._expired(leases)):
            taken = await self._store.take(lease, self.me)
            if taken is not None:
                log.info("source %s: took the lease of shard %s", self.name, lease.shard_id)
                self.held[lease.shard_id] = taken
                self._seen[lease.shard_id] = (taken.owner, taken.counter, time.monotonic())

    async def _checkpoint(self) -> None:
        """Write each held shard's delivered position; a finished shard's lease is then let go."""
        assert self._store is not None
        for shard_id, lease in list(self.held.items()):
            position = self.tracker.safe(shard_id)
            if position is None or position == lease.checkpoint:
                continue
            written = await self._store.checkpoint(lease, position)
            if written is None:
                log.info("source %s: lost the lease of shard %s", self.name, shard_id)
                self._lose(shard_id)
                continue
            self.held[shard_id] = written
            if position == SHARD_END:
                await self._store.release(written)
                self.held.pop(shard_id)
                self.readers.pop(shard_id, None)
                self.tracker.forget(shard_id)
                self._listed_at = 0.0  # its children may be listed now
                self._wake.set()

    def _start_readers(self, leases: list[Lease]) -> None:
        by_shard = {lease.shard_id: lease for lease in leases}
        for shard_id, lease in self.held.items():
            if shard_id in self.readers or lease.checkpoint == SHARD_END:
                continue
            parents = [by_shard.get(parent) for parent in lease.parents]
            if any(parent is not None and parent.checkpoint != SHARD_END for parent in parents):
                continue  # a parent still has records to deliver first
            reader = ShardReader(
                self._kinesis,
                self.kinesis_stream_name,
                shard_id,
                lease.checkpoint,
                self.stream,
                self.tracker,
                self.read,
                self.counters,
            )
            self.readers[shard_id] = asyncio.create_task(reader.run(), name=f"read-{shard_id}")

    def _reap_readers(self) -> None:
        """A reader that failed is started again from the checkpoint (at-least-once)."""
        for shard_id, task in list(self.readers.items()):
            if not task.done():
                continue
            if task.cancelled() or task.exception() is not None:
                if not task.cancelled():
                    log.error("source %s: shard %s reader failed: %r",
                              self.name, shard_id, task.exception())  # fmt: skip
                del self.readers[shard_id]
                self.tracker.forget(shard_id)
            # A finished shard keeps its done task until SHARD_END is checkpointed.

    def _lose(self, shard_id: str) -> None:
        self.held.pop(shard_id, None)
        self.counters.millis_behind_latest.pop(shard_id, None)
        task = self.readers.pop(shard_id, None)
        if task is not None:
            task.cancel()
        self.tracker.forget(shard_id)

    async def _hand_off(self) -> None:
        tasks = list(self.readers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.readers.clear()
        try:
            await self._checkpoint()
            assert self._store is not None
            for lease in list(self.held.values()):
                await self._store.release(lease)
            await self._store.close()
        except Exception as exc:
            log.warning("source %s: leases not released: %s", self.name, exc)
        self.held.clear()
