"""The last 15 minutes of every stream's readings, one sample every 5 seconds, and the recent
delivery errors: what the status page charts, and the window ratio metrics are computed over."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from firehose.readings import stream_readings
from firehose.stream import DeliveryStream

SAMPLE_SECONDS = 5.0
KEPT_SAMPLES = 180  # 15 minutes
KEPT_ERRORS = 20  # per stream


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # epoch seconds
    streams: dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class ErrorNote:
    at: float
    message: str


class History:
    """Samples in a ring buffer; `run` takes one every SAMPLE_SECONDS until cancelled."""

    def __init__(self, streams: Mapping[str, DeliveryStream]) -> None:
        self.streams = streams
        self.samples: deque[Sample] = deque(maxlen=KEPT_SAMPLES)
        self.errors: dict[str, deque[ErrorNote]] = {
            name: deque(maxlen=KEPT_ERRORS) for name in streams
        }
        self._seen_failures: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def take(self) -> Sample:
        sample = Sample(time.time(), {n: stream_readings(s) for n, s in self.streams.items()})
        self.samples.append(sample)
        self._note_errors(sample)
        return sample

    def _note_errors(self, sample: Sample) -> None:
        """A new failure since the last look adds the stream's last error (bounded)."""
        for name, values in sample.streams.items():
            failures = values["_delivery_failures"]
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
