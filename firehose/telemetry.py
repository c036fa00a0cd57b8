"""What the service observes about itself (metrics, history, status) and the quotas it applies
to puts: built once per service from its streams, handed to the API."""

from __future__ import annotations

from collections.abc import Mapping

from firehose.history import History
from firehose.metrics import ServiceMetrics
from firehose.quotas import QuotaBook, QuotaSet
from firehose.stream import DeliveryStream


class Telemetry:
    def __init__(
        self,
        streams: Mapping[str, DeliveryStream],
        sources: list[object],
        quota_set: QuotaSet = "off",
    ) -> None:
        self.streams = streams
        self.quotas = QuotaBook(streams, quota_set)
        self.history = History(streams)
        self.metrics = ServiceMetrics(streams, sources, self.quotas, self.history)

    def forget(self, name: str) -> None:
        """A stream deleted: what was kept of it goes, so a stream created again under its
        name starts from nothing, as a new stream does in Firehose."""
        self.history.forget(name)
        self.metrics.api.forget(name)

    def start(self) -> None:
        self.history.start()

    async def stop(self) -> None:
        await self.history.stop()
