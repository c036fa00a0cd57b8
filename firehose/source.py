"""Sources: what feeds a delivery stream besides the HTTP API (the Kinesis reader, …)."""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    """Something that reads records from elsewhere and puts them into a stream.

    Contract with the stream (`DeliveryStream`):
    - the service starts sources after every stream has opened, and stops them before any
      stream closes;
    - a source calls `put(records, arrival_ms=...)` with the arrival time its records carry;
      when the stream takes fewer than given (back-pressure), it awaits `wait_for_room` and puts
      the rest, instead of failing or spinning;
    - a source checkpoints a position only once `delivered_seq` has passed the seq `put`
      gave the record there (`add_delivered_listener` tells it when), so nothing it
      checkpointed can be lost.
    """

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
