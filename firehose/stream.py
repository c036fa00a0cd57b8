"""`DeliveryStream`: ties the log, the buffer and the destination together.

put → log append + group-committed fsync → acknowledge. A delivery task tails the log, cuts
batches by size, flushes them on size, on interval (timer driven) or at shutdown, hands each to
the destination (retrying until it is taken), then advances the delivered watermark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from firehose.batch import Batch, BatchBuilder
from firehose.config import DeliveryStreamConfig
from firehose.destination import Destination
from firehose.errors import DeliveryError, ServiceUnavailableError, WalError
from firehose.wal import RecoveryReport, WriteAheadLog

log = logging.getLogger(__name__)

READ_BYTES = 16 * 1024 * 1024


def log_directory(data_dir: Path, stream_name: str) -> Path:
    """Where a stream's log lives. `.` and `..` are valid stream names but not folder names."""
    if set(stream_name) == {"."}:
        stream_name = stream_name.replace(".", "%2E")
    return data_dir / "streams" / stream_name


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class StreamCounters:
    """Totals since start, named after Firehose's CloudWatch metrics."""

    incoming_records: int = 0
    incoming_bytes: int = 0
    throttled_records: int = 0
    delivered_records: int = 0
    delivered_bytes: int = 0
    delivered_objects: int = 0
    delivery_failures: int = 0
    last_error: str | None = None
    recovery: RecoveryReport = field(default_factory=RecoveryReport)

    def totals(self) -> dict[str, int | str | None]:
        """The running totals (what /health shows), without the recovery report."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recovery"}


class DeliveryStream:
    """One delivery stream of this service instance."""

    def __init__(
        self,
        config: DeliveryStreamConfig,
        destination: Destination,
        *,
        data_dir: Path,
        max_undelivered_bytes: int,
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.config = config
        self.name = config.name
        self.destination = destination
        self.wal = WriteAheadLog(log_directory(data_dir, config.name), segment_bytes=segment_bytes)
        self.max_undelivered_bytes = max_undelivered_bytes
        self.size_bytes = config.s3.buffering_hints.size_bytes
        self.interval_ms = config.s3.buffering_hints.interval_in_seconds * 1000
        self.counters = StreamCounters()
        self.undelivered_bytes = 0
        self.accepting = False
        self._wakeup = asyncio.Event()
        self._closing = False
        self._give_up = False
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the log (in a thread: it may read gigabytes), then start delivering."""
        report = await asyncio.get_running_loop().run_in_executor(None, self.wal.open)
        self.counters.recovery = report
        self.undelivered_bytes = report.bytes_pending
        if report.records_pending:
            log.info(
                "stream %s: replaying %d records (%d bytes) from the log",
                self.name,
                report.records_pending,
                report.bytes_pending,
            )
        await self.destination.start()
        self._task = asyncio.create_task(self._deliver_loop(), name=f"deliver-{self.name}")
        self.accepting = True

    async def close(self, timeout: float) -> bool:
        """Flush every buffer and deliver it; True if nothing is left undelivered.

        What cannot be delivered within `timeout` seconds stays in the log for the next start.
        """
        self.accepting = False
        # Puts that passed the check have appended already (no await in between): make them
        # durable so the final flush below reads them.
        with contextlib.suppress(WalError):
            await self.wal.sync()
        self._closing = True
        self._wakeup.set()
        delivered_all = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._give_up = True
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:
                log.exception("stream %s: delivery failed during shutdown", self.name)
            delivered_all = self.wal.delivered_seq >= self.wal.next_seq - 1
        await self.destination.close()
        await self.wal.close()
        if not delivered_all:
            log.warning(
                "stream %s: %d bytes not delivered before shutdown; kept in the log",
                self.name,
                self.undelivered_bytes,
            )
        return delivered_all

    # -- ingest ---------------------------------------------------------------------------

    async def put(self, records: list[bytes]) -> tuple[int, int]:
        """Make the leading records that fit durable; returns (first seq, how many were taken).

        Raises ServiceUnavailableError when none fit under the undelivered-bytes limit or the
        log cannot be written; the caller answers the rest as throttled.
        """
        if not self.accepting:
            raise ServiceUnavailableError(f"Delivery stream {self.name} is not accepting records.")
        room = self.max_undelivered_bytes - self.undelivered_bytes
        taken, size = 0, 0
        for record in records:
            if size + len(record) > room:
                break
            size += len(record)
            taken += 1
        if taken == 0:
            self.counters.throttled_records += len(records)
            raise ServiceUnavailableError("Slow down.")
        accepted = records if taken == len(records) else records[:taken]
        try:
            first_seq, _ = self.wal.append(accepted, now_ms())
            self.undelivered_bytes += size
            await self.wal.sync()
        except WalError as exc:
            log.error("stream %s: %s", self.name, exc)
            raise ServiceUnavailableError(
                "The delivery stream cannot store records right now."
            ) from exc
        self.counters.incoming_records += taken
        self.counters.incoming_bytes += size
        self.counters.throttled_records += len(records) - taken
        self._wakeup.set()
        return first_seq, taken

    # -- delivery -------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        """Deliver until closed. An unexpected failure (a log read, a bug in a destination)
        restarts delivery from the delivered watermark after a pause: at-least-once, never
        a silently dead stream."""
        pause = 1.0
        while True:
            try:
                await self._deliver_from_log()
                return
            except DeliveryError as exc:
                if self._closing and not exc.retriable:
                    return  # shutdown gave up on it: the records stay in the log
                self._note_failure(exc)
            except Exception as exc:
                self._note_failure(exc)
            log.info("stream %s: delivery restarts from the delivered watermark in %.0f s",
                     self.name, pause)  # fmt: skip
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    def _note_failure(self, exc: Exception) -> None:
        self.counters.delivery_failures += 1
        self.counters.last_error = f"{type(exc).__name__}: {exc}"
        log.error("stream %s: delivery failed: %s", self.name, exc, exc_info=exc)

    async def _deliver_from_log(self) -> None:
        reader = self.wal.reader()
        builder = BatchBuilder(self.size_bytes, reader.after_seq, object_id=self.wal.object_id)
        while True:
            self._wakeup.clear()
            # Reads of up to a whole buffer: a read's frames pin its buffer, so smaller reads
            # would not lower the peak much, and larger ones are fewer round trips.
            frames = await reader.read(
                max(self.size_bytes - builder.current.size_bytes, READ_BYTES)
            )
            for frame in frames:
                full = builder.add(frame)
                while full:
                    # Popped, not iterated: a loop variable would keep the delivered batch
                    # alive, doubling memory while the next one fills.
                    await self._deliver(full.pop(0))
            if frames:
                continue  # read on until caught up before waiting
            if not builder.empty and (self._closing or self._interval_passed(builder.current)):
                await self._deliver(builder.seal())
                continue
            if self._closing:
                return
            await self._wait(builder.current)

    def _interval_passed(self, batch: Batch) -> bool:
        assert batch.oldest_arrival_ms is not None
        return now_ms() - batch.oldest_arrival_ms >= self.interval_ms

    async def _wait(self, batch: Batch) -> None:
        """Sleep until new records are committed or the oldest buffered record is due."""
        timeout = None
        if batch.oldest_arrival_ms is not None:
            timeout = max(0.0, (batch.oldest_arrival_ms + self.interval_ms - now_ms()) / 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _deliver(self, batch: Batch) -> None:
        """Deliver `batch` and record it delivered, retrying with backoff until both succeed."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((DeliveryError, WalError)),
            wait=wait_exponential(multiplier=0.5, max=30) + wait_random(0, 0.5),
            stop=self._stop_retrying,
            before_sleep=self._log_retry,
            reraise=True,
        ):
            with attempt:
                await self.destination.deliver(batch)
                # Retried with the delivery: a rewrite of the same key is harmless.
                await self.wal.mark_delivered(batch.last_seq)
        self.undelivered_bytes -= batch.size_bytes
        self.counters.delivered_records += batch.record_count
        self.counters.delivered_bytes += batch.size_bytes
        self.counters.delivered_objects += 1
        self.counters.last_error = None

    def _stop_retrying(self, state: RetryCallState) -> bool:
        # Nothing acknowledged is dropped for age: a stream retries until shutdown gives up,
        # and at shutdown it does not wait out its timeout on an error retrying cannot fix.
        error = state.outcome.exception() if state.outcome else None
        permanent = isinstance(error, DeliveryError) and not error.retriable
        return self._give_up or (self._closing and permanent)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.counters.delivery_failures += 1
        self.counters.last_error = str(error)
        permanent = isinstance(error, DeliveryError) and not error.retriable
        log.log(
            logging.ERROR if permanent else logging.WARNING,
            "stream %s: delivery to %s failed (attempt %d), retrying%s: %s",
            self.name,
            self.destination.kind,
            state.attempt_number,
            " although it looks permanent" if permanent else "",
            error,
        )

    @property
    def delivering(self) -> bool:
        """Whether the delivery task is running (False before open and after close)."""
        return self._task is not None and not self._task.done()
