"""`DeliveryStream`: ties the log, the processing stage, the buffers and the destination together.

put → log append + group-committed fsync → acknowledge. A delivery task tails the log, runs the
stage, routes records to partition buffers, flushes each on size, on interval (timer driven) or
at shutdown, hands each batch to its output (retrying by the destination's policy), then
advances the delivered watermark to the low-water mark of what is still held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from firehose.batch import Batch, PartitionKey, RecordRun, run_from_frame
from firehose.buffer import low_water_mark
from firehose.config import DeliveryStreamConfig
from firehose.delivery import STALL_SECONDS, DeliveryCounters, DeliveryState, Output
from firehose.destination import Destination, ErrorOutput, SourceBackup
from firehose.errors import DeliveryError, LogKeyError, NotAcceptingError, WalError
from firehose.log_keys import LogKeyring
from firehose.logs import STREAM_NAME
from firehose.master_keys import DEFAULT_KEY_FILE, LocalKeyFile
from firehose.retry import RetryPolicy
from firehose.stage import PassThrough, ProcessingCounters, Stage, StageOutput
from firehose.wal import RecoveryReport, WriteAheadLog

__all__ = ["STALL_SECONDS", "DeliveryState", "DeliveryStream", "SourceBackup"]

log = logging.getLogger(__name__)

READ_BYTES = 16 * 1024 * 1024
# With processing, records are copied on their way through the stage, and several reads are in
# it at once: smaller reads keep those copies small next to the buffers.
STAGE_READ_BYTES = 2 * 1024 * 1024
# Reads in the stage beyond the one being filed: enough that its workers never wait for the
# delivery loop to send the next read.
STAGE_READS_AHEAD = 3


@dataclass
class _Processing:
    """A read on its way through the stage: filed once its output comes back."""

    output: asyncio.Future[StageOutput]
    runs: list[RecordRun]
    after_seq: int


def log_directory(data_dir: Path, stream_name: str) -> Path:
    """Where a stream's log lives. `.` and `..` are valid stream names but not folder names."""
    if set(stream_name) == {"."}:
        stream_name = stream_name.replace(".", "%2E")
    return data_dir / "streams" / stream_name


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class StreamCounters(DeliveryCounters):
    """Totals since start, named after Firehose's CloudWatch metrics."""

    incoming_records: int = 0
    incoming_bytes: int = 0
    throttled_records: int = 0
    partition_count_exceeded: int = 0  # records refused for the active-partition limit
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
        stage: Stage | None = None,
        error_output: ErrorOutput | None = None,
        source_backup: SourceBackup | None = None,
        stall_seconds: float = STALL_SECONDS,
        retry_policy: RetryPolicy | None = None,
        max_active_partitions: int | None = None,
        max_buffered_bytes: int | None = None,
        log_key_file: Path | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.destination = destination
        self.stage: Stage = stage or PassThrough()
        self._read_bytes = READ_BYTES if stage is None else STAGE_READ_BYTES
        self._reads_ahead = 0 if stage is None else STAGE_READS_AHEAD  # see _deliver_from_log
        directory = log_directory(data_dir, config.name)
        local_key = (
            LocalKeyFile(data_dir / DEFAULT_KEY_FILE, creatable=True)
            if log_key_file is None
            else LocalKeyFile(log_key_file, creatable=False)
        )
        self.log_keys = LogKeyring(directory, local_key)
        self.wal = WriteAheadLog(directory, segment_bytes=segment_bytes, keys=self.log_keys.cipher)
        # Why the stream's log keys cannot be had (KMS refused, key file missing), if so: it
        # then accepts no records.
        self.key_failure: LogKeyError | None = None
        self.max_undelivered_bytes = max_undelivered_bytes
        section = config.destination
        self.counters = StreamCounters()
        self.processing = ProcessingCounters()
        self.main = Output(
            config.name,
            destination,
            section.buffering_hints,
            retry_policy or section.retry_policy(),
            self.counters,
            error_output,
            stall_seconds,
            max_partitions=max_active_partitions,
            max_held_bytes=max_buffered_bytes,
            max_records=section.max_batch_records,
        )
        self.backup: Output | None = None
        self._backup_processed = source_backup is not None and source_backup.processed
        if source_backup is not None:
            # Retried until taken, like S3: a backup is never dropped for age.
            self.backup = Output(
                f"{config.name} (source backup)",
                source_backup.destination,
                source_backup.hints,
                RetryPolicy(),
                self.counters,
                None,
                stall_seconds,
            )
        self.outputs = [self.main] if self.backup is None else [self.main, self.backup]
        self.undelivered_bytes = 0
        self.accepting = False
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._closing = False
        self._give_up = False
        self._task: asyncio.Task[None] | None = None
        self._read_through = 0
        # (last seq, bytes) of each read that the watermark has not passed yet: what the
        # watermark frees, whatever processing made of the records.
        self._read_sizes: deque[tuple[int, int]] = deque()
        self._unread_since_ms: int | None = None
        self._delivered_listeners: list[Callable[[int], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the log (in a thread: it may read gigabytes), then start delivering.

        A log whose keys cannot be had stays closed, and the stream refuses puts with the key's
        error; a stream that cannot get a key for new frames delivers its log, and refuses puts.
        """
        try:
            await self.log_keys.load()
            report = await asyncio.get_running_loop().run_in_executor(None, self.wal.open)
        except LogKeyError as exc:
            self._key_refused(exc, "cannot read its log, which stays as it is")
            return
        try:
            if self.config.encryption is not None:
                self.wal.sealing = await self.log_keys.new_sealing_key(self.config.encryption)
        except LogKeyError as exc:
            self._key_refused(exc, "cannot encrypt new records; delivering what its log holds")
        self.log_keys.retain(self.wal.key_ids_in_use())
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
        for output in self.outputs:
            await output.destination.start()
        self._task = asyncio.create_task(self._deliver_loop(), name=f"deliver-{self.name}")
        self.accepting = self.key_failure is None

    def _key_refused(self, exc: LogKeyError, outcome: str) -> None:
        self.key_failure = exc
        log.error(
            "stream %s: %s (%s); it accepts no records until it is opened again with the key",
            self.name,
            exc,
            outcome,
        )

    @property
    def encrypted(self) -> bool:
        """Whether new records are encrypted at rest in the log: `Encrypted` of put answers."""
        return self.wal.sealing is not None

    async def close(self, timeout: float, *, flush: bool = True) -> bool:
        """Flush every buffer and deliver it; True if nothing is left undelivered.

        What cannot be delivered within `timeout` seconds stays in the log for the next start.
        With `flush=False` delivery stops at once: what is buffered or in flight stays in the
        log above the delivered watermark, for whatever opens the log next.
        """
        self.accepting = False
        # Puts that passed the check have appended already (no await in between): make them
        # durable so the final flush below reads them.
        with contextlib.suppress(WalError):
            await self.wal.sync()
        if not flush and self._task is not None:
            self._give_up = True
            # Cancelled again until it ends: a wait_for racing its timeout can swallow one.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait([self._task], timeout=0.1)
        self._closing = True
        self._wakeup.set()
        delivered_all = True
        if self._task is not None and not flush:
            delivered_all = self.wal.delivered_seq >= self.wal.next_seq - 1
        elif self._task is not None:
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
        for output in self.outputs if self._task is not None else []:  # started with the task
            await output.destination.close()
        if self.main.error_output is not None:
            await self.main.error_output.close()
        await self.wal.close()
        if not delivered_all and flush:
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
            if self.key_failure is not None:
                raise self.key_failure
            raise NotAcceptingError(f"Delivery stream {self.name} is not accepting records.")
        room = self.max_undelivered_bytes - self.undelivered_bytes
        taken, size = len(records), sum(map(len, records))
        if size > room:  # only then count record by record how many fit
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
        STREAM_NAME.set(self.name)  # this task's logs name the stream
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
        self.main.reset(self.wal.object_id)
        if self.backup is not None:
            self.backup.reset(self._backup_object_id)
        self._read_through = reader.after_seq
        self._read_sizes.clear()
        after_seq = reader.after_seq
        # With a stage, the next reads are processed while the last one is buffered and
        # delivered: the stage's workers do not wait on this loop. Filed in read order.
        pending: deque[_Processing] = deque()
        try:
            while True:
                self._wakeup.clear()
                # Reads of up to a whole buffer: a read's frames pin its buffer, so smaller
                # reads would not lower the peak much, and larger ones are fewer round trips.
                frames = await reader.read(self._read_bytes)
                runs: list[RecordRun] = []
                for frame in frames:
                    run = run_from_frame(frame, after_seq)
                    if run is not None:
                        runs.append(run)
                        after_seq = frame.last_seq
                        self._read_sizes.append((after_seq, len(run.data)))
                if runs:
                    processing = asyncio.ensure_future(self._process(runs))
                    pending.append(_Processing(processing, runs, after_seq))
                    if len(pending) > self._reads_ahead:
                        await self._file(pending.popleft())
                if frames:
                    continue  # read on until caught up before waiting
                if pending:
                    await self._file(pending.popleft())
                    continue
                self._unread_since_ms = None
                due = [
                    (output, batch)
                    for output in self.outputs
                    for batch in output.hold(output.buffers.due(now_ms(), everything=self._closing))
                ]
                if due:
                    while due:
                        await self._deliver(*due.pop(0))
                    continue
                advanced = await self._advance_watermark()
                if self._closing:
                    return
                await self._wait(retry_watermark=not advanced)
        finally:
            # Delivery stops (closing, or a failure it restarts from): reads not yet filed are
            # read again from the log.
            for unfiled in pending:
                unfiled.output.cancel()
                with contextlib.suppress(BaseException):
                    await unfiled.output

    async def _process(self, runs: list[RecordRun]) -> StageOutput:
        """One read through the stage, counted for the processing metrics."""
        started = time.monotonic()
        try:
            output = await self.stage.process(runs)
        except Exception:
            self.processing.calls += 1
            self.processing.failed_calls += 1
            raise
        self.processing.count(output, time.monotonic() - started)
        return output

    async def _file(self, processing: _Processing) -> None:
        """A processed read into the buffers; then the watermark may pass it."""
        await self._take(processing.runs, await processing.output)
        self._read_through = processing.after_seq

    async def _take(self, runs: list[RecordRun], output: StageOutput) -> None:
        """Buffer what was read: processed for the destination, and for the backup as it came
        (source-record backup) or as processed (AllData)."""
        if self.backup is not None and not self._backup_processed:
            for run in runs if output.source is None else output.source:
                await self._buffer(self.backup, run, None)
        # Refused runs are filed before anything is buffered: a delivery below must not let the
        # watermark pass records that are neither buffered nor written.
        admitted, over_limit = self.main.buffers.admit(output.routed)
        self.counters.partition_count_exceeded += len(over_limit)
        failed = output.failed + over_limit
        if failed:
            await self.main.write_errors(failed, attempts=1, give_up=self._giving_up)
        for partition, routed in admitted:
            await self._buffer(self.main, routed, partition)
            if self.backup is not None and self._backup_processed:
                await self._buffer(self.backup, routed, None)

    async def _buffer(self, output: Output, run: RecordRun, partition: PartitionKey) -> None:
        full = output.hold(output.buffers.add(run, partition))
        while full:
            # Popped, not iterated: a loop variable would keep the delivered batch alive,
            # doubling memory while the next one fills.
            await self._deliver(output, full.pop(0))

    def _backup_object_id(self, first_seq: int) -> str:
        """Backup objects get ids of their own, as fixed across retries as the main ones."""
        digest = hashlib.sha256(f"backup/{self.wal.object_id(first_seq)}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    async def _wait(self, *, retry_watermark: bool) -> None:
        """Sleep until new records are committed or the oldest buffered record is due (or a
        second, to write a watermark that could not be written)."""
        dues = [o.buffers.next_due_ms() for o in self.outputs]
        known = [due for due in dues if due is not None]
        timeout = max(0.0, (min(known) - now_ms()) / 1000) if known else None
        if retry_watermark:
            timeout = min(timeout or 1.0, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _giving_up(self, permanent: bool) -> bool:
        # Nothing acknowledged is dropped for age: an output retries until shutdown gives up,
        # and at shutdown it does not wait out its timeout on an error retrying cannot fix.
        return self._give_up or (self._closing and permanent)

    async def _deliver(self, output: Output, batch: Batch) -> None:
        await output.deliver(batch, self._giving_up)
        await self._advance_watermark()

    async def _advance_watermark(self) -> bool:
        """Persist the low-water mark; False (logged, tried again soon) if it cannot be."""
        safe = low_water_mark(self._read_through, (o.lowest_held_seq() for o in self.outputs))
        if safe <= self.wal.delivered_seq:
            return True
        try:
            await self.wal.mark_delivered(safe)
        except WalError as exc:
            log.error("stream %s: %s (records may be delivered again after a restart)",
                      self.name, exc)  # fmt: skip
            return False
        self.log_keys.retain(self.wal.key_ids_in_use())
        sizes = self._read_sizes
        while sizes and sizes[0][0] <= safe:
            self.undelivered_bytes -= sizes.popleft()[1]
        self._room.set()
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
        """The worst state of the stream's outputs."""
        if not self.delivering:
            return DeliveryState.STOPPED
        states = [output.state for output in self.outputs]
        for worst in (DeliveryState.STALLED, DeliveryState.RETRYING, DeliveryState.DELIVERING):
            if worst in states:
                return worst
        return DeliveryState.IDLE

    def data_freshness_seconds(self, output: Output) -> float:
        """Age of the oldest record `output` has not delivered yet (0 when none waits), as
        Firehose's `DataFreshness` metrics show it."""
        if self.undelivered_bytes <= 0:
            return 0.0
        known = [m for m in (output.oldest_arrival_ms(), self._unread_since_ms) if m is not None]
        return max(0, now_ms() - min(known)) / 1000 if known else 0.0

    def oldest_undelivered_ms(self) -> int | None:
        """Arrival time of the oldest record not yet delivered, or None when all are."""
        if self.undelivered_bytes <= 0:
            return None
        candidates = [output.oldest_arrival_ms() for output in self.outputs]
        candidates.append(self._unread_since_ms)
        known = [moment for moment in candidates if moment is not None]
        return min(known) if known else None

    def health(self) -> dict[str, Any]:
        """What /health shows of this stream."""
        oldest = self.oldest_undelivered_ms()
        report = self.counters.recovery
        health: dict[str, Any] = {
            "accepting": self.accepting and self.wal.failure is None,
            "encrypted": self.encrypted,
            "delivery": self.delivery_state.value,
            "delivering": self.delivering,
            "last_error": self.counters.last_error,
            "undelivered_bytes": self.undelivered_bytes,
            "oldest_undelivered_age_seconds": None
            if oldest is None
            else round(max(0, now_ms() - oldest) / 1000, 3),
            "buffered_partitions": self.main.buffers.partitions,
            "log": {
                "failure": self.wal.failure
                or (None if self.key_failure is None else f"key: {self.key_failure}"),
                "records_lost_at_start": report.records_lost,
                "problems": [
                    {"kind": p.kind, "message": p.message, "records_affected": p.records_affected}
                    for p in report.problems
                ],
            },
            **self.counters.totals(),
            **self.destination.counters.totals(),
        }
        if self.backup is not None:
            backup = self.backup.destination.counters.totals()
            health.update({f"BackupToS3.{k.split('.', 1)[1]}": v for k, v in backup.items()})
        return health

    @property
    def healthy(self) -> bool:
        """Accepting and delivering normally: what /health's overall status sums up."""
        return (
            self.accepting
            and self.key_failure is None
            and self.wal.failure is None
            and self.delivery_state in (DeliveryState.IDLE, DeliveryState.DELIVERING)
        )
