"""The last 15 minutes of every stream's numbers, one sample every 5 seconds, and the recent
delivery errors: what the status page charts, and the window the ratio metrics are taken over.

A sample is one flat array of floats for the streams that exist when it is taken, with an index
of where each stream's values start (shared by the samples while the set of streams stays the
same), so 15 minutes of 200 streams take a few MiB. Streams come and go through the API: a
deleted stream is forgotten, so a stream created again under its name starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from firehose.readings import BACKUP, delivery_prefix, stream_readings
from firehose.stream import DeliveryStream

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 5.0
KEPT_SAMPLES = 180  # 15 minutes
KEPT_ERRORS = 20  # per stream
# What a sample keeps of each stream, whatever its destination kind.
KEPT = (
    "incoming_records",
    "incoming_bytes",
    "delivered_records",
    "delivered_bytes",
    "freshness_seconds",
    "attempts",
    "successful_attempts",
    "backup_attempts",
    "backup_successful_attempts",
    "processing_calls",
    "processing_failed_calls",
    "partition_count_exceeded",
    "delivery_failures",
)


def kept(stream: DeliveryStream, values: Mapping[str, float]) -> dict[str, float]:
    """The KEPT numbers of a stream, from its readings."""
    main = delivery_prefix(stream)
    names = (
        "IncomingRecords",
        "IncomingBytes",
        f"{main}.Records",
        f"{main}.Bytes",
        f"{main}.DataFreshness",
        f"_attempts.{main}",
        f"_successful_attempts.{main}",
        f"_attempts.{BACKUP}",
        f"_successful_attempts.{BACKUP}",
        "_processing_calls",
        "_processing_failed_calls",
        "_partition_count_exceeded",
        "_delivery_failures",
    )
    return {key: values.get(name, 0.0) for key, name in zip(KEPT, names, strict=True)}


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # epoch seconds
    index: dict[str, int]  # stream name -> its first value in `values`
    values: array[float]

    def stream(self, name: str) -> dict[str, float] | None:
        start = self.index.get(name)
        if start is None:
            return None
        return dict(zip(KEPT, self.values[start : start + len(KEPT)], strict=True))


@dataclass(frozen=True, slots=True)
class ErrorNote:
    at: float
    message: str


class History:
    """Samples in a ring buffer; once started, one every SAMPLE_SECONDS until stopped."""

    def __init__(self, streams: Mapping[str, DeliveryStream]) -> None:
        self.streams = streams
        self.samples: deque[Sample] = deque(maxlen=KEPT_SAMPLES)
        self.errors: dict[str, deque[ErrorNote]] = {}
        self._index: dict[str, int] = {}
        self._seen_failures: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def take(self) -> Sample:
        """A sample of the streams there are now."""
        if tuple(self._index) != tuple(self.streams):  # in order: values follow it
            self._index = {name: i * len(KEPT) for i, name in enumerate(self.streams)}
        values = array("d")
        for stream in self.streams.values():
            values.extend(kept(stream, stream_readings(stream)).values())
        sample = Sample(time.time(), self._index, values)
        self.samples.append(sample)
        self._note_errors(sample)
        return sample

    def forget(self, name: str) -> None:
        """A deleted stream: its samples and errors go, so a new stream of that name starts
        with none."""
        for sample in self.samples:
            sample.index.pop(name, None)
        self._index = {}  # the next sample builds its own index
        self.errors.pop(name, None)
        self._seen_failures.pop(name, None)

    def _note_errors(self, sample: Sample) -> None:
        """A new failure since the last look adds the stream's last error (bounded)."""
        failures_at = KEPT.index("delivery_failures")
        for name, start in sample.index.items():
            failures = sample.values[start + failures_at]
            if failures > self._seen_failures.get(name, 0):
                message = self.streams[name].counters.last_error
                if message:
                    notes = self.errors.setdefault(name, deque(maxlen=KEPT_ERRORS))
                    notes.append(ErrorNote(sample.at, message))
            self._seen_failures[name] = failures

    def reference(self, seconds: float) -> Sample | None:
        """The oldest sample at most `seconds` old (None before the first): the start of a
        window ending now."""
        since = time.time() - seconds
        return next((sample for sample in self.samples if sample.at >= since), None)

    def start(self) -> None:
        self.take()
        self._task = asyncio.create_task(self._run(), name="history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            try:
                self.take()
            except Exception:  # a sample missed, not the sampling: the status page goes on
                log.exception("history: a sample could not be taken")
