"""`DeliveryStream`: ties the log, the processing stage, the buffers and the destination together.

put → log append + group-committed fsync → acknowledge. A delivery task tails the log, runs the
stage, routes records to partition buffers, flushes each on size, on interval (timer driven) or
at shutdown, hands each batch to the destination (retrying by the destination's policy), then
advances the delivered watermark to the low-water mark of what is still held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from firehose.batch import Batch, run_from_frame
from firehose.buffer import LowWaterMark, PartitionBuffers
from firehose.config import DeliveryStreamConfig
from firehose.destination import Destination, ErrorOutput, FailedRecord
from firehose.errors import DeliveryError, NotAcceptingError, WalError
from firehose.retry import RetryPolicy
from firehose.stage import PassThrough, Stage
from firehose.wal import RecoveryReport, WriteAheadLog

log = logging.getLogger(__name__)

READ_BYTES = 16 * 1024 * 1024
# An attempt that has not answered after this long, plus a quarter second per MiB it sends
# (4 MiB/s is slow for any store), is shown as stalled on /health.
STALL_SECONDS = 10.0


def log_directory(data_dir: Path, stream_name: str) -> Path:
    """Where a stream's log lives. `.` and `..` are valid stream names but not folder names."""
    if set(stream_name) == {"."}:
        stream_name = stream_name.replace(".", "%2E")
    return data_dir / "streams" / stream_name


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class DeliveryState(StrEnum):
    """What the delivery task is doing, as /health shows it."""

    IDLE = "idle"  # nothing to deliver, or waiting for a buffer to fill
    DELIVERING = "delivering"  # an attempt is under way
    RETRYING = "retrying"  # the last attempt failed; waiting to try again
    STALLED = "stalled"  # an attempt has gone unanswered far longer than it should
    STOPPED = "stopped"  # not open, or closed


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
    failed_records: int = 0
    last_error: str | None = None
    recovery: RecoveryReport = field(default_factory=RecoveryReport)

    def totals(self) -> dict[str, int | str | None]:
        """The running totals (what /health shows), without the recovery report."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recovery"}


@dataclass
class _Attempt:
    """The delivery attempt under way, for stall detection."""

    started: float
    stall_after: float


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
        stage: Stage | None = None,
        error_output: ErrorOutput | None = None,
        stall_seconds: float = STALL_SECONDS,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.destination = destination
        self.stage: Stage = stage or PassThrough()
        self.error_output = error_output
        self.wal = WriteAheadLog(log_directory(data_dir, config.name), segment_bytes=segment_bytes)
        self.max_undelivered_bytes = max_undelivered_bytes
        section = config.destination
        self.size_bytes = section.buffering_hints.size_bytes
        self.interval_ms = section.buffering_hints.interval_in_seconds * 1000
        self.retry_policy = retry_policy or section.retry_policy()
        self.stall_seconds = stall_seconds
        self.counters = StreamCounters()
        self.undelivered_bytes = 0
        self.accepting = False
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._closing = False
        self._give_up = False
        self._task: asyncio.Task[None] | None = None
        self._buffers = PartitionBuffers(self.size_bytes, self.interval_ms)
        self._watermark = LowWaterMark(0)
        self._in_flight: dict[int, Batch] = {}
        self._attempt: _Attempt | None = None
        self._retrying = False
        self._unread_since_ms: int | None = None
        self._delivered_listeners: list[Callable[[int], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the log (in a thread: it may read gigabytes), then start delivering."""
        report = await asyncio.get_running_loop().run_in_executor(None, self.wal.open)
        self.counters.recovery = report
        self.undelivered_bytes = report.bytes_pending
        if report.records_pending:
            self._unread_since_ms = now_ms()
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
        await self.stage.close()
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

    async def put(self, records: list[bytes], arrival_ms: int | None = None) -> tuple[int, int]:
        """Make the leading records that fit durable; returns (first seq, how many were taken).

        Takes none (0) when none fit under the undelivered-bytes limit: back-pressure, which the
        API answers as throttling and a source waits out with `wait_for_room`. Raises
        NotAcceptingError before open and after close, WalError when the log cannot be written.
        """
        if not self.accepting:
            raise NotAcceptingError(f"Delivery stream {self.name} is not accepting records.")
        room = self.max_undelivered_bytes - self.undelivered_bytes
        taken, size = 0, 0
        for record in records:
            if size + len(record) > room:
                break
            size += len(record)
            taken += 1
        self.counters.throttled_records += len(records) - taken
        if taken == 0:
            return self.wal.next_seq, 0
        accepted = records if taken == len(records) else records[:taken]
        arrival = now_ms() if arrival_ms is None else arrival_ms
        try:
            first_seq, _ = self.wal.append(accepted, arrival)
            self.undelivered_bytes += size
            if self._unread_since_ms is None:
                self._unread_since_ms = arrival
            await self.wal.sync()
        except WalError as exc:
            log.error("stream %s: %s", self.name, exc)
            raise
        self.counters.incoming_records += taken
        self.counters.incoming_bytes += size
        self._wakeup.set()
        return first_seq, taken

    async def wait_for_room(self, size: int = 1) -> None:
        """Return once `size` more bytes (capped at the limit) fit under the undelivered limit."""
        size = min(size, self.max_undelivered_bytes)
        while self.max_undelivered_bytes - self.undelivered_bytes < size:
            self._room.clear()
            await self._room.wait()

    def add_delivered_listener(self, listener: Callable[[int], None]) -> None:
        """Call `listener(seq)` whenever the delivered watermark has durably moved up to seq."""
        self._delivered_listeners.append(listener)

    @property
    def delivered_seq(self) -> int:
        return self.wal.delivered_seq

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
            finally:
                self._attempt = None
                self._retrying = False
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
        self._buffers = PartitionBuffers(
            self.size_bytes, self.interval_ms, object_id=self.wal.object_id
        )
        self._watermark = LowWaterMark(reader.after_seq)
        self._in_flight.clear()
        after_seq = reader.after_seq
        while True:
            self._wakeup.clear()
            # Reads of up to a whole buffer: a read's frames pin its buffer, so smaller reads
            # would not lower the peak much, and larger ones are fewer round trips.
            frames = await reader.read(READ_BYTES)
            for frame in frames:
                run = run_from_frame(frame, after_seq)
                if run is None:
                    continue
                after_seq = frame.last_seq
                output = await self.stage.process([run])
                if output.failed:
                    await self._write_errors(output.failed, attempts=1)
                for partition, routed in output.routed:
                    full = self._buffers.add(routed, partition)
                    while full:
                        # Popped, not iterated: a loop variable would keep the delivered batch
                        # alive, doubling memory while the next one fills.
                        await self._deliver(full.pop(0))
                self._watermark.read_through = after_seq
            if frames:
                continue  # read on until caught up before waiting
            self._unread_since_ms = None
            due = self._buffers.due(now_ms(), everything=self._closing)
            if due:
                while due:
                    await self._deliver(due.pop(0))
                continue
            advanced = await self._advance_watermark()
            if self._closing:
                return
            await self._wait(retry_watermark=not advanced)

    async def _wait(self, *, retry_watermark: bool) -> None:
        """Sleep until new records are committed or the oldest buffered record is due (or a
        second, to write a watermark that could not be written)."""
        due_ms = self._buffers.next_due_ms()
        timeout = None if due_ms is None else max(0.0, (due_ms - now_ms()) / 1000)
        if retry_watermark:
            timeout = min(timeout or 1.0, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _deliver(self, batch: Batch) -> None:
        """Deliver `batch` by the retry policy; what is still failing at its deadline goes to
        the error output. Then let the watermark pass it."""
        self._watermark.deliver_started(batch)
        self._in_flight[id(batch)] = batch
        try:
            await self._deliver_with_retries(batch)
        finally:
            self._watermark.deliver_ended(batch)
            del self._in_flight[id(batch)]
        self.undelivered_bytes -= batch.size_bytes
        self._room.set()
        await self._advance_watermark()

    async def _deliver_with_retries(self, batch: Batch) -> None:
        policy = self.retry_policy
        first_attempt = time.monotonic()
        pending = batch
        attempt = 0
        while True:
            attempt += 1
            failed, error = await self._attempt_delivery(pending)
            if error is None and not failed:
                self._retrying = False
                return
            reason = error or DeliveryError(
                f"{len(failed)} of {pending.record_count} records refused: "
                f"{failed[0].error_code}: {failed[0].error_message}",
                code=failed[0].error_code,
            )
            self._note_attempt_failed(reason, attempt)
            if self._give_up or (self._closing and not reason.retriable):
                raise reason
            deadline = policy.deadline_seconds
            # Without an error output nothing may be dropped: retry on, as for S3.
            window_over = deadline is not None and time.monotonic() - first_attempt >= deadline
            if window_over and self.error_output is not None:
                if error is not None:
                    failed = self._all_failed(pending, error)
                await self._write_errors(failed, attempts=attempt)
                self._retrying = False
                return
            if failed:
                pending = pending.subset([item.record for item in failed])
            self._retrying = True
            await asyncio.sleep(policy.backoff(attempt) + random.uniform(0, 0.5))

    async def _attempt_delivery(
        self, batch: Batch
    ) -> tuple[list[FailedRecord], DeliveryError | None]:
        stall_after = self.stall_seconds + batch.size_bytes / (4 * 1024 * 1024)
        self._attempt = _Attempt(time.monotonic(), stall_after)
        counters = self.destination.counters
        try:
            result = await self.destination.deliver(batch)
        except DeliveryError as exc:
            counters.failed_attempts += 1
            return [], exc
        finally:
            self._attempt = None
        counters.requests += 1
        taken = batch.record_count - len(result.failed)
        taken_bytes = batch.size_bytes - sum(len(item.record.data) for item in result.failed)
        counters.records += taken
        counters.bytes += taken_bytes
        self.counters.delivered_records += taken
        self.counters.delivered_bytes += taken_bytes
        self.counters.delivered_objects += 1
        if result.failed:
            counters.failed_attempts += 1
        return result.failed, None

    @staticmethod
    def _all_failed(batch: Batch, error: DeliveryError) -> list[FailedRecord]:
        output_type = error.output_type or "delivery-failed"
        return [
            FailedRecord(record, output_type, error.code, str(error)) for record in batch.records()
        ]

    async def _write_errors(self, failed: list[FailedRecord], *, attempts: int) -> None:
        """Store error records durably, retrying until it works: the log keeps them meanwhile."""
        assert self.error_output is not None, "a stage or destination failed records: no output"
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.error_output.write(failed, attempts=attempts)
                break
            except DeliveryError as exc:
                self._note_attempt_failed(exc, attempt, what="error output")
                if self._give_up:
                    raise
                self._retrying = True
                await asyncio.sleep(self.retry_policy.backoff(attempt) + random.uniform(0, 0.5))
        self._retrying = False
        self.counters.failed_records += len(failed)
        self.destination.counters.failed_records += len(failed)

    def _note_attempt_failed(self, error: DeliveryError, attempt: int, what: str = "") -> None:
        self.counters.delivery_failures += 1
        self.counters.last_error = str(error)
        permanent = not error.retriable
        log.log(
            logging.ERROR if permanent else logging.WARNING,
            "stream %s: delivery to %s failed (attempt %d)%s: %s",
            self.name,
            what or self.destination.kind,
            attempt,
            ", retrying although it looks permanent" if permanent else ", retrying",
            error,
        )

    async def _advance_watermark(self) -> bool:
        """Persist the low-water mark; False (logged, tried again soon) if it cannot be."""
        safe = self._watermark.safe_through(self._buffers)
        if safe <= self.wal.delivered_seq:
            return True
        try:
            await self.wal.mark_delivered(safe)
        except WalError as exc:
            log.error("stream %s: %s (records may be delivered again after a restart)",
                      self.name, exc)  # fmt: skip
            return False
        for listener in self._delivered_listeners:
            listener(self.wal.delivered_seq)
        return True

    # -- state ----------------------------------------------------------------------------

    @property
    def delivering(self) -> bool:
        """Whether the delivery task is running (False before open and after close)."""
        return self._task is not None and not self._task.done()

    @property
    def delivery_state(self) -> DeliveryState:
        if not self.delivering:
            return DeliveryState.STOPPED
        attempt = self._attempt
        if attempt is not None:
            if time.monotonic() - attempt.started > attempt.stall_after:
                return DeliveryState.STALLED
            return DeliveryState.DELIVERING
        if self._retrying:
            return DeliveryState.RETRYING
        return DeliveryState.IDLE

    def oldest_undelivered_ms(self) -> int | None:
        """Arrival time of the oldest record not yet delivered, or None when all are."""
        if self.undelivered_bytes <= 0:
            return None
        candidates = [b.oldest_arrival_ms for b in self._in_flight.values()]
        candidates.append(self._buffers.oldest_arrival_ms())
        candidates.append(self._unread_since_ms)
        known = [moment for moment in candidates if moment is not None]
        return min(known) if known else None

    def health(self) -> dict[str, Any]:
        """What /health shows of this stream."""
        oldest = self.oldest_undelivered_ms()
        report = self.counters.recovery
        return {
            "accepting": self.accepting and self.wal.failure is None,
            "delivery": self.delivery_state.value,
            "delivering": self.delivering,
            "last_error": self.counters.last_error,
            "undelivered_bytes": self.undelivered_bytes,
            "oldest_undelivered_age_seconds": None
            if oldest is None
            else round(max(0, now_ms() - oldest) / 1000, 3),
            "buffered_partitions": self._buffers.partitions,
            "log": {
                "failure": self.wal.failure,
                "records_lost_at_start": report.records_lost,
                "problems": [
                    {"kind": p.kind, "message": p.message, "records_affected": p.records_affected}
                    for p in report.problems
                ],
            },
            **self.counters.totals(),
            **self.destination.counters.totals(),
        }

    @property
    def healthy(self) -> bool:
        """Accepting and delivering normally: what /health's overall status sums up."""
        return (
            self.accepting
            and self.wal.failure is None
            and self.delivery_state in (DeliveryState.IDLE, DeliveryState.DELIVERING)
        )
