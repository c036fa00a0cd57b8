"""An output of a stream: a destination with its own buffers, retry policy and error output.

A stream has one main output and, with source-record backup, a second one fed the records as
they were before processing. Each output cuts its own batches and retries them by its own
policy; the stream's watermark waits for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum

from firehose.batch import Batch
from firehose.buffer import PartitionBuffers
from firehose.config import BufferingHints
from firehose.destination import Destination, ErrorOutput, FailedRecord
from firehose.errors import DeliveryError
from firehose.retry import RetryPolicy

log = logging.getLogger(__name__)

# A delivery attempt unanswered after this long, plus a quarter second per MiB it sends (4 MiB/s
# is slow for any store), shows as stalled.
STALL_SECONDS = 10.0


class DeliveryState(StrEnum):
    """What the delivery task is doing, as /health shows it."""

    IDLE = "idle"  # nothing to deliver, or waiting for a buffer to fill
    DELIVERING = "delivering"  # an attempt is under way
    RETRYING = "retrying"  # the last attempt failed; waiting to try again
    STALLED = "stalled"  # an attempt has gone unanswered far longer than it should
    STOPPED = "stopped"  # not open, or closed


@dataclass
class DeliveryCounters:
    """A stream's delivery totals since start, named after what /health shows."""

    delivered_records: int = 0
    delivered_bytes: int = 0
    delivered_objects: int = 0
    delivery_failures: int = 0
    failed_records: int = 0
    last_error: str | None = None

    def totals(self) -> dict[str, int | str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Attempt:
    started: float
    stall_after: float


@dataclass
class Output:
    """One destination of a stream, with everything needed to deliver to it."""

    name: str  # for logs: the stream's name, and "backup" for the source-record backup
    destination: Destination
    hints: BufferingHints
    retry_policy: RetryPolicy
    counters: DeliveryCounters
    error_output: ErrorOutput | None = None
    stall_seconds: float = STALL_SECONDS
    # Dynamic partitioning's bounds (see PartitionBuffers); None for none.
    max_partitions: int | None = None
    max_held_bytes: int | None = None
    max_records: int | None = None  # per batch, for destinations whose requests have a cap
    buffers: PartitionBuffers = field(init=False)
    in_flight: dict[int, Batch] = field(default_factory=dict)
    retrying: bool = False
    _attempt: _Attempt | None = None

    def __post_init__(self) -> None:
        self.reset(None)

    def reset(self, object_id: Callable[[int], str] | None) -> None:
        """Empty buffers for a new pass over the log (objects named by `object_id`)."""
        self.buffers = PartitionBuffers(
            self.hints.size_bytes,
            self.hints.interval_in_seconds * 1000,
            object_id=object_id,
            max_partitions=self.max_partitions,
            max_held_bytes=self.max_held_bytes,
            max_records=self.max_records,
        )
        self.in_flight.clear()
        self._attempt = None
        self.retrying = False

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> DeliveryState:
        attempt = self._attempt
        if attempt is not None:
            if time.monotonic() - attempt.started > attempt.stall_after:
                return DeliveryState.STALLED
            return DeliveryState.DELIVERING
        return DeliveryState.RETRYING if self.retrying else DeliveryState.IDLE

    def lowest_held_seq(self) -> int | None:
        held = [batch.first_seq for batch in self.in_flight.values()]
        buffered = self.buffers.lowest_held_seq()
        if buffered is not None:
            held.append(buffered)
        return min(held) if held else None

    def oldest_arrival_ms(self) -> int | None:
        known = [b.oldest_arrival_ms for b in self.in_flight.values() if b.oldest_arrival_ms]
        buffered = self.buffers.oldest_arrival_ms()
        if buffered is not None:
            known.append(buffered)
        return min(known) if known else None

    # -- delivering -----------------------------------------------------------------------

    def hold(self, batches: list[Batch]) -> list[Batch]:
        """Count sealed batches as held until delivered, so the watermark cannot pass them
        while they wait their turn."""
        for batch in batches:
            self.in_flight[id(batch)] = batch
        return batches

    async def deliver(self, batch: Batch, give_up: Callable[[bool], bool]) -> None:
        """Deliver `batch` by the retry policy; what still fails when its window is over goes
        to the error output. `give_up(permanent)` says whether shutdown has given up on it: the
        error is then raised and the records stay in the log."""
        self.in_flight[id(batch)] = batch
        try:
            await self._deliver_with_retries(batch, give_up)
        finally:
            self.in_flight.pop(id(batch), None)
            self._attempt = None
            self.retrying = False

    async def _deliver_with_retries(self, batch: Batch, give_up: Callable[[bool], bool]) -> None:
        policy = self.retry_policy
        first_attempt = time.monotonic()
        pending = batch
        attempt = 0
        while True:
            attempt += 1
            failed, error = await self._attempt_delivery(pending)
            permanent = [item for item in failed if not item.retriable]
            if permanent and self.error_output is not None:
                await self.write_errors(permanent, attempts=attempt, give_up=give_up)
                failed = [item for item in failed if item.retriable]
            if error is None and not failed:
                return
            reason = error or DeliveryError(
                f"{len(failed)} of {pending.record_count} records refused: "
                f"{failed[0].error_code}: {failed[0].error_message}",
                code=failed[0].error_code,
            )
            deadline = policy.deadline_seconds
            # Without an error output nothing may be dropped: retry on, as for S3. With a window,
            # a whole-batch error retrying cannot fix (HTTP 413) ends it at once.
            window_over = deadline is not None and (
                time.monotonic() - first_attempt >= deadline
                or (error is not None and not error.retriable)
            )
            filing = window_over and self.error_output is not None
            self._note_failed(reason, attempt, filing=filing)
            if give_up(not reason.retriable):
                raise reason
            if filing:
                if error is not None:
                    failed = _all_failed(pending, error)
                await self.write_errors(failed, attempts=attempt, give_up=give_up)
                return
            if failed:
                pending = pending.subset([item.record for item in failed])
            self.retrying = True
            await asyncio.sleep(policy.delay(attempt))
            self.retrying = False

    async def _attempt_delivery(
        self, batch: Batch
    ) -> tuple[list[FailedRecord], DeliveryError | None]:
        # A destination whose protocol waits on purpose (Splunk's indexer acks) says how long.
        allowance = getattr(self.destination, "expected_wait_seconds", 0.0)
        stall_after = self.stall_seconds + allowance + batch.size_bytes / (4 * 1024 * 1024)
        self._attempt = _Attempt(time.monotonic(), stall_after)
        counters = self.destination.counters
        counters.attempts += 1
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
        else:
            counters.successful_attempts += 1
        return result.failed, None

    async def write_errors(
        self, failed: list[FailedRecord], *, attempts: int, give_up: Callable[[bool], bool]
    ) -> None:
        """Store error records durably, retrying until it works: the log keeps them meanwhile."""
        if self.error_output is None:
            raise DeliveryError(f"{len(failed)} records failed and no error output is set up")
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.error_output.write(failed, attempts=attempts)
                break
            except DeliveryError as exc:
                self._note_failed(exc, attempt, what="error output")
                if give_up(False):
                    raise
                self.retrying = True
                await asyncio.sleep(self.retry_policy.delay(attempt))
                self.retrying = False
        self.counters.failed_records += len(failed)
        self.destination.counters.failed_records += len(failed)

    def _note_failed(
        self, error: DeliveryError, attempt: int, what: str = "", *, filing: bool = False
    ) -> None:
        self.counters.delivery_failures += 1
        self.counters.last_error = str(error)
        permanent = not error.retriable
        if filing:
            next_step = ", filing the records in the error output"
        elif permanent:
            next_step = ", retrying although it looks permanent"
        else:
            next_step = ", retrying"
        log.log(
            logging.ERROR if permanent or filing else logging.WARNING,
            "stream %s: delivery to %s failed (attempt %d)%s: %s",
            self.name,
            what or self.destination.kind,
            attempt,
            next_step,
            error,
        )


def _all_failed(batch: Batch, error: DeliveryError) -> list[FailedRecord]:
    output_type = error.output_type or "delivery-failed"
    return [
        FailedRecord(record, output_type, error.code, str(error), error.details)
        for record in batch.records()
    ]
