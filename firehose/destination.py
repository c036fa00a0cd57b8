"""The one interface every destination implements, and what it hands back to the stream."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from firehose.batch import Batch, Record
from firehose.config import BufferingHints

# Anything after `?` in a URL may be a token.
_QUERY = re.compile(r"\?\S*")


def shown_target(target: str) -> str:
    """A destination's `target` fit to show or log: without the query string of any URL."""
    return _QUERY.sub("?…", target)


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A record a stage or destination gave up on, in the terms of Firehose's error records.

    `output_type` is the `!{firehose:error-output-type}` it is filed under
    (`http-endpoint-failed`, `processing-failed`, …); `details` holds the keys that type adds
    (`lambdaArn`, `esDocumentId`, …). A record refused for what it is (`retriable` False: it
    does not fit the schema, a document the cluster rejects as malformed) goes to the error
    output at once instead of being sent again.
    """

    record: Record
    output_type: str
    error_code: str
    error_message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    retriable: bool = True


@dataclass
class DeliveryResult:
    """What `deliver` reports: empty `failed` means the whole batch was taken.

    A destination with per-record answers (bulk APIs) names the records it did not take; the
    stream retries only those, then hands what is left at the deadline to the error output.
    """

    failed: list[FailedRecord] = field(default_factory=list)


DELIVERED = DeliveryResult()


@dataclass
class DestinationCounters:
    """Totals since start, named after Firehose's `DeliveryTo<kind>.*` metrics.

    Counted where the destination acknowledged: the stream adds to them only after `deliver`.
    """

    kind: str
    records: int = 0
    bytes: int = 0
    requests: int = 0
    failed_attempts: int = 0
    failed_records: int = 0
    # For the `.Success` ratio: attempts, and those that delivered every record.
    attempts: int = 0
    successful_attempts: int = 0
    # Further totals a destination keeps under Firehose's metric names, which the stream does not
    # know of: `DeliveryToS3.ObjectCount`, `SucceedConversion.Records`, …
    published: dict[str, int] = field(default_factory=dict)

    def publish(self, name: str, amount: int) -> None:
        self.published[name] = self.published.get(name, 0) + amount

    def totals(self) -> dict[str, int]:
        name = f"DeliveryTo{self.kind}"
        return {
            f"{name}.Records": self.records,
            f"{name}.Bytes": self.bytes,
            f"{name}.Requests": self.requests,
            f"{name}.FailedAttempts": self.failed_attempts,
            f"{name}.FailedRecords": self.failed_records,
        }


class Destination(Protocol):
    """Where a delivery stream's batches go.

    Guarantees a destination gives the stream:
    - `deliver` returns only once the destination has acknowledged every record it does not
      name in `DeliveryResult.failed`; the stream then lets its watermark pass them.
    - `deliver` raises `DeliveryError` when it could not take the batch at all; the stream keeps
      the batch and calls `deliver` again with the same batch (same `object_id`), so a retry
      overwrites instead of duplicating. Duplicates happen only after a crash between
      acknowledgement and watermark, or when a destination cannot overwrite.
    - `deliver` does no retrying of its own: the stream retries by `retry_policy`, so there is
      one retry layer (clients' own retries are turned off). Buffering hints, retry policy and
      description come from the destination's config section (`DestinationSection`).
    - `deliver` is never called concurrently for one stream, and is not called after `close`.
    - A destination whose attempts wait on purpose (an acknowledgement that may take minutes)
      may set `expected_wait_seconds`, so /health does not call such an attempt stalled.
    """

    kind: str  # the Firehose metric name part: "S3", "HttpEndpoint", …
    target: str  # where it delivers, for people: "s3://bucket at http://127.0.0.1:9000"
    counters: DestinationCounters

    async def start(self) -> None: ...

    async def deliver(self, batch: Batch) -> DeliveryResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SourceBackup:
    """Every record also to a second place, with its own buffering hints: as it came, before
    processing (S3's source-record backup), or as delivered (`processed`, the AllData modes)."""

    destination: Destination
    hints: BufferingHints
    processed: bool = False


class ErrorOutput(Protocol):
    """Where records go that were given up on: the error prefix or the backup bucket.

    `write` returns once the error records are durably stored, so the stream may then let its
    watermark pass them; it raises `DeliveryError` when it cannot, and the stream pauses
    delivery and tries again (the records stay in the log: nothing is lost).
    """

    async def write(self, failures: Sequence[FailedRecord], *, attempts: int) -> None: ...

    async def close(self) -> None: ...
