"""The processor contract: what every record processor takes and gives back.

Processors run in a fixed order on the records read from a stream's log, before they are routed
to the destination buffers. Each takes a list of records and returns the records that go on
(possibly more, fewer or changed) and the records it gave up on, which the stream files in the
error output. Records keep the seq of the log record they came from, so the delivered watermark
stays exact; a de-aggregated record also gets its position as `sub_seq`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from firehose.destination import FailedRecord


@dataclass(frozen=True, slots=True)
class KinesisRecordMetadata:
    """Where a record read from a Kinesis data stream came from (the Lambda event carries it)."""

    shard_id: str
    partition_key: str
    sequence_number: str
    approximate_arrival_ms: int
    sub_sequence_number: int = 0


@dataclass(slots=True)
class ProcessingRecord:
    """A record on its way through the processors."""

    seq: int
    arrival_ms: int
    data: bytes | memoryview
    sub_seq: int = 0
    # Keys for !{partitionKeyFromLambda:k} (a transform's metadata.partitionKeys) and
    # !{partitionKeyFromQuery:k} (MetadataExtraction), used by dynamic partitioning.
    lambda_keys: dict[str, str] | None = None
    query_keys: dict[str, str] | None = None
    kinesis: KinesisRecordMetadata | None = None


@dataclass
class ProcessorOutput:
    records: list[ProcessingRecord] = field(default_factory=list)
    failed: list[FailedRecord] = field(default_factory=list)


class Processor(Protocol):
    """One step of `ProcessingConfiguration`.

    `process` may be called again with the same records after a crash (at-least-once), so it
    must not count on seeing a record once. It runs on the delivery task, never on the API's
    request path; a processor that runs user code runs it in workers. Output order follows
    input order.
    """

    type: str  # the API's processor Type: "Lambda", "RecordDeAggregation", …

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ProcessingContext:
    """What processors of one stream may need besides their own parameters."""

    stream_name: str
    stream_arn: str
    region: str
    # How user transforms run: "process" (a pool of worker processes, the default), "thread"
    # or "inline" (on the delivery task: only for cheap functions).
    transform_mode: str = "process"
    transform_workers: int = 2
    transform_timeout_seconds: float = 300.0
    # Address space of each worker process (RLIMIT_AS) in process mode; 0 for no limit.
    transform_memory_mib: int = 1024
    # Set for a stream fed by a Kinesis data stream: the event then names it.
    source_kinesis_stream_arn: str | None = None
