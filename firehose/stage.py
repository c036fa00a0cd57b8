"""The processing stage between the log and the destination buffers.

A stage takes runs of records as read from the log and returns the records to deliver, each
routed to a partition, and the records it gave up on (to the error output). Records it returns
keep the seq of the record they came from, so the watermark stays exact. The stage runs on the
delivery task, never on the API's request path; a stage that runs user code runs it in workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from firehose.batch import PartitionKey, RecordRun
from firehose.destination import FailedRecord


@dataclass
class StageOutput:
    routed: list[tuple[PartitionKey, RecordRun]] = field(default_factory=list)
    failed: list[FailedRecord] = field(default_factory=list)
    # The records as their source gave them, when the log holds them wrapped (a Kinesis
    # source's envelopes): what the source-record backup gets instead of the runs read.
    source: list[RecordRun] | None = None


@dataclass
class ProcessingCounters:
    """What the stream's processing did, for Firehose's processing metrics: counted per call
    on the delivery task, from what came back, so the stage process needs to report nothing."""

    calls: int = 0
    failed_calls: int = 0
    seconds: float = 0.0
    records: int = 0
    bytes: int = 0

    def count(self, output: StageOutput, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        for _, run in output.routed:
            self.records += len(run.lengths)
            self.bytes += len(run.data)


class Stage(Protocol):
    """`process` may be called again before an earlier call has returned (the stream keeps its
    next read in the stage while it files the last); each call answers for its own runs."""

    async def process(self, runs: list[RecordRun]) -> StageOutput: ...

    async def close(self) -> None: ...


class PassThrough:
    """No processing configured: every record goes as it came, to the one buffer."""

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        return StageOutput(routed=[(None, run) for run in runs])

    async def close(self) -> None:
        return None
