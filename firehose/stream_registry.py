"""The live set of delivery streams: what the API looks up per request, changed while the
service runs.

A replace keeps the stream's log: the old runtime stops without flushing (what it buffered or
had in flight stays in the log above the delivered watermark), then the new runtime opens the
same log and replays it. Nothing acknowledged is lost; a batch in flight at the swap may be
delivered twice, as after a crash. Puts that meet the swap wait for the new runtime; the new
runtime counts on from the old one's totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from firehose.config import DeliveryStreamConfig
from firehose.durable import fsync_directory
from firehose.stream import DeliveryStream, log_directory
from firehose.stream_totals import carry_totals

log = logging.getLogger(__name__)

# A stream's runtime for a config and its version (the version names its S3 objects).
StreamBuilder = Callable[[DeliveryStreamConfig, int], DeliveryStream]


class StreamRegistry:
    """Adds, replaces and removes the runtimes in `streams` (the dict the API reads)."""

    def __init__(
        self,
        streams: dict[str, DeliveryStream],
        build: StreamBuilder,
        data_dir: Path,
        *,
        swap_wait_seconds: float = 10.0,
    ) -> None:
        self.streams = streams
        self._build = build
        self._data_dir = data_dir
        self._swap_wait_seconds = swap_wait_seconds
        self._swaps: dict[str, asyncio.Event] = {}
        # Called with the name of each stream removed (what was kept of it goes too).
        self.removed: list[Callable[[str], None]] = []

    async def add(
        self, config: DeliveryStreamConfig, version: int, previous: DeliveryStream | None = None
    ) -> None:
        """Open a new stream's log and start delivering; then puts reach it. A runtime that
        follows `previous` counts on from its totals."""
        stream = self._build(config, version)
        try:
            await stream.open()
        except BaseException:
            with contextlib.suppress(Exception):
                await stream.close(0)
            raise
        if previous is not None:
            carry_totals(previous, stream)
        self.streams[config.name] = stream

    async def replace(
        self, config: DeliveryStreamConfig, version: int, previous_version: int
    ) -> None:
        """Run `config` on the stream's log in place of its current runtime. If the new runtime
        cannot open, the previous config runs again and the error is raised."""
        name = config.name
        old = self.streams[name]
        swapped = asyncio.Event()
        self._swaps[name] = swapped
        try:
            # No flush: buffered records stay in the log for the new runtime to deliver.
            await old.close(0, flush=False)
            latest = old  # the runtime that counted last
            try:
                await self.add(config, version, old)
                latest = self.streams[name]
                refused = latest.key_failure
                if refused is not None and old.key_failure is None:
                    # A log key that cannot be had fails the change: the old key stays in use.
                    await self.streams.pop(name).close(0, flush=False)
                    raise refused
            except Exception:
                log.exception("stream %s: the new configuration cannot run; keeping the old", name)
                await self.add(old.config, previous_version, latest)
                raise
        finally:
            swapped.set()
            del self._swaps[name]

    async def remove(self, name: str, timeout: float | None) -> bool:
        """Stop a stream (delivering what it holds for up to `timeout` seconds; None: not at
        all, forced), then delete its log unless that would drop records a delete that is not
        forced did not deliver; True if everything had been delivered."""
        stream = self.streams.pop(name)
        delivered_all = await stream.close(timeout or 0, flush=timeout is not None)
        if delivered_all or timeout is None:
            remove_log(self._data_dir, name)
            for listener in self.removed:
                listener(name)
        return delivered_all

    async def current(self, name: str) -> DeliveryStream | None:
        """The stream's runtime once a swap under way is over (waited for a few seconds)."""
        swap = self._swaps.get(name)
        if swap is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._swap_wait_seconds):
                    await swap.wait()
        return self.streams.get(name)


def remove_log(data_dir: Path, name: str) -> None:
    """Delete a stream's log folder for good (its name may then be used again)."""
    folder = log_directory(data_dir, name)
    if folder.is_dir():
        shutil.rmtree(folder)
    elif folder.exists():
        folder.unlink()  # not a log: whatever stood in its way
    else:
        return
    fsync_directory(folder.parent)
