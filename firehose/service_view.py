"""What the API, the status page and telemetry need of the running service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from firehose.stream import DeliveryStream


class Streams(Protocol):
    """What the API needs of the service: its streams, whether they are ready, who it is."""

    ready: bool
    region: str
    account_id: str
    started_at: float

    # Read-only, so a service holding a dict of streams matches.
    @property
    def streams(self) -> Mapping[str, DeliveryStream]: ...
