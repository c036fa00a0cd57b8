"""Destinations: one module each behind `firehose.destination.Destination`, and their registry.

The registry maps a destination config section (its model class) to the function that builds
its runtime part; the stream never names a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from destinations.objectstore import SharedObjectStores
from destinations.s3 import S3Destination
from firehose.config import DeliveryStreamConfig, DestinationSection, ExtendedS3Destination
from firehose.destination import Destination
from firehose.settings import Settings


@dataclass
class DestinationContext:
    """What destinations of one service share: settings, the encoding pool, store clients."""

    settings: Settings
    encoder: Executor | None = None
    stores: SharedObjectStores = field(default_factory=SharedObjectStores)


Builder = Callable[[DeliveryStreamConfig, DestinationContext], Destination]


def _s3(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, ExtendedS3Destination)
    endpoint = context.settings.s3_endpoint_url or section.endpoint_url
    store = context.stores.get(endpoint, region=context.settings.region)
    return S3Destination(config.name, section, store, encoder=context.encoder)


REGISTRY: dict[type[DestinationSection], Builder] = {
    ExtendedS3Destination: _s3,
}


def build_destination(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    """The destination a stream's config names."""
    return REGISTRY[type(config.destination)](config, context)
