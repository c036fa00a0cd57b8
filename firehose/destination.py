"""The one interface every destination implements."""

from __future__ import annotations

from typing import Protocol

from firehose.batch import Batch


class Destination(Protocol):
    """Where a delivery stream's batches go.

    Guarantees a destination gives the stream:
    - `deliver` returns only once the destination has acknowledged the whole batch; the stream
      then advances its delivered watermark, so a batch is never acknowledged twice by mistake.
    - `deliver` raises `DeliveryError` when it could not; the stream keeps the batch and calls
      `deliver` again with the same batch (same `object_id`), so a retry overwrites instead of
      duplicating. Duplicates happen only after a crash between acknowledgement and watermark.
    - `deliver` is never called concurrently for one stream, and is not called after `close`.
    """

    kind: str  # the Firehose metric name part: "S3", "HttpEndpoint", …
    target: str  # where it delivers, for people: "s3://bucket at http://127.0.0.1:9000"

    async def start(self) -> None: ...

    async def deliver(self, batch: Batch) -> None: ...

    async def close(self) -> None: ...
