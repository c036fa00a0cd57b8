"""The last 15 minutes of every stream's numbers, one sample every 5 seconds, and the recent
delivery errors: what the status page charts, and the window the ratio metrics are taken over.

A sample is one flat array of floats for all streams (the service's streams are fixed at
start), so 15 minutes of 200 streams take a few MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from firehose.readings import BACKUP, delivery_prefix, stream_readings
from firehose.stream import DeliveryStream

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
    index: Mapping[str, int]  # stream name -> its first value in `values`
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
        self.index = {name: i * len(KEPT) for i, name in enumerate(streams)}
        self.samples: deque[Sample] = deque(maxlen=KEPT_SAMPLES)
        self.errors: dict[str, deque[ErrorNote]] = {
            name: deque(maxlen=KEPT_ERRORS) for name in streams
        }
        self._seen_failures: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def take(self) -> Sample:
        values = array("d")
        for stream in self.streams.values():
            values.extend(kept(stream, stream_readings(stream)).values())
        sample = Sample(time.time(), self.index, values)
        self.samples.append(sample)
        self._note_errors(sample)
        return sample

    def _note_errors(self, sample: Sample) -> None:
        """A new failure since the last look adds the stream's last error (bounded)."""
        failures_at = KEPT.index("delivery_failures")
        for name, start in self.index.items():
            failures = sample.values[start + failures_at]
            if failures > self._seen_failures.get(name, 0):
                message = self.streams[name].counters.last_error
                if message:
                    self.errors[name].append(ErrorNote(sample.at, message))
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
            self.take()
