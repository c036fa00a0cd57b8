"""A list-backed destination for fast tests of the core, beside the real-server tests."""

from __future__ import annotations

import asyncio

from firehose.batch import Batch
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

    async def start(self) -> None:
        self.started = True

    async def deliver(self, batch: Batch) -> None:
        self.attempts.append(batch.object_id)
        await self.open.wait()
        if self.unexpected is not None:
            error, self.unexpected = self.unexpected, None
            raise error
        if self.fail_forever or self.failures_left > 0:
            self.failures_left -= 1
            raise self.error
        self.delivered.append((batch.object_id, b"".join(batch.chunks()), batch.record_count))
        self.changed.set()

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
