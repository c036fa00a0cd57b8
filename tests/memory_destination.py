"""A list-backed destination for fast tests of the core, beside the real-server tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from firehose.batch import Batch, Record
from firehose.destination import (
    DELIVERED,
    DeliveryResult,
    DestinationCounters,
    FailedRecord,
)
from firehose.errors import DeliveryError


class MemoryDestination:
    """Keeps every delivered batch's bytes; can fail, or hold deliveries until released."""

    __test__ = False
    kind = "Memory"
    target = "memory"

    def __init__(self) -> None:
        self.delivered: list[tuple[str, bytes, int]] = []  # (object_id, bytes, record count)
        self.attempts: list[str] = []
        self.failures_left = 0
        self.fail_forever = False
        self.error: Exception = DeliveryError("destination down (test)")
        self.unexpected: Exception | None = None  # raised once, as a bug in a destination would
        self.open = asyncio.Event()
        self.open.set()
        self.changed = asyncio.Event()
        self.started = False
        self.closed = False
        self.counters = DestinationCounters(self.kind)
        # Records this predicate picks are refused one by one (as a bulk API would).
        self.refuse: Callable[[Record], bool] | None = None

    async def start(self) -> None:
        self.started = True

    async def deliver(self, batch: Batch) -> DeliveryResult:
        self.attempts.append(batch.object_id)
        await self.open.wait()
        if self.unexpected is not None:
            error, self.unexpected = self.unexpected, None
            raise error
        if self.fail_forever or self.failures_left > 0:
            self.failures_left -= 1
            raise self.error
        refuse = self.refuse
        if refuse is None:
            self.delivered.append((batch.object_id, b"".join(batch.chunks()), batch.record_count))
            self.changed.set()
            return DELIVERED
        taken, failed = [], []
        for record in batch.records():
            if refuse(record):
                failed.append(FailedRecord(record, "memory-failed", "Memory.Refused", "refused"))
            else:
                taken.append(record)
        if taken:
            body = b"".join(bytes(r.data) for r in taken)
            self.delivered.append((batch.object_id, body, len(taken)))
            self.changed.set()
        return DeliveryResult(failed)

    async def close(self) -> None:
        self.closed = True

    @property
    def data(self) -> bytes:
        return b"".join(body for _, body, _ in self.delivered)

    async def wait_for_records(self, count: int, timeout: float = 10.0) -> None:
        async def _wait() -> None:
            while sum(n for _, _, n in self.delivered) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


class MemoryErrorOutput:
    """Keeps every error record written; can fail until told otherwise."""

    __test__ = False

    def __init__(self) -> None:
        self.written: list[tuple[FailedRecord, int]] = []  # (record, attempts)
        self.failing = False

    async def write(self, failures: Sequence[FailedRecord], *, attempts: int) -> None:
        if self.failing:
            raise DeliveryError("error output down (test)")
        self.written += [(failure, attempts) for failure in failures]

    async def close(self) -> None:
        return None
