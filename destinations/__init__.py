"""Destinations: one module each behind `firehose.destination.Destination`, and their registry.

The registry maps a destination config section (its model class) to the function that builds
its runtime part; the stream never names a kind. Beside it: the error output and the
source-record backup, which every kind writes to an S3 location of its config.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from destinations.error_output import S3ErrorOutput
from destinations.http_endpoint import HttpDestination
from destinations.objectstore import ObjectStore, SharedObjectStores
from destinations.opensearch import OpenSearchDestination
from destinations.redshift import RedshiftDestination
from destinations.s3 import S3Destination
from destinations.splunk import SplunkDestination
from firehose.config import (
    DeliveryStreamConfig,
    DestinationSection,
    ElasticsearchConfiguration,
    ExtendedS3Destination,
    HttpEndpointDestination,
    OpenSearchConfiguration,
    RedshiftConfiguration,
    S3Configuration,
    SplunkConfiguration,
)
from firehose.describe import stream_arn
from firehose.destination import Destination, SourceBackup
from firehose.settings import Settings


@dataclass
class DestinationContext:
    """What destinations of one service share: settings, the encoding pool, store clients."""

    settings: Settings
    encoder: Executor | None = None
    stores: SharedObjectStores = field(default_factory=SharedObjectStores)
    # The stream version the destinations built with this context name their objects after.
    version: int = 1

    def store(self, location: S3Configuration, *fallback_urls: str | None) -> ObjectStore:
        """A handle on the shared store for `location`: its endpoint, else the first fallback
        given (the service-wide `s3_endpoint_url` overrides them all), writing objects with
        the location's encryption."""
        urls = (self.settings.s3_endpoint_url, location.endpoint_url, *fallback_urls)
        given = (url for url in urls if url)
        return self.stores.get(
            next(given, None), region=self.settings.region, kms_key_arn=location.kms_key_arn
        )


Builder = Callable[[DeliveryStreamConfig, DestinationContext], Destination]


def _s3(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, ExtendedS3Destination)
    return S3Destination(
        config.name,
        section,
        context.store(section),
        encoder=context.encoder,
        dynamic_partitioning=section.partitioned,
        version=context.version,
        region=context.settings.region,
        account_id=context.settings.account_id,
    )


def _splunk(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, SplunkConfiguration)
    return SplunkDestination(config.name, section)


def _http_endpoint(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, HttpEndpointDestination)
    settings = context.settings
    arn = stream_arn(config.name, region=settings.region, account_id=settings.account_id)
    return HttpDestination(section, source_arn=arn, encoder=context.encoder)


def _opensearch(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, OpenSearchConfiguration)
    return OpenSearchDestination(config.name, section)


def _redshift(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    section = config.destination
    assert isinstance(section, RedshiftConfiguration)
    staging = section.s3_configuration
    return RedshiftDestination(
        config.name,
        section,
        context.store(staging),
        encoder=context.encoder,
        version=context.version,
    )


REGISTRY: dict[type[DestinationSection], Builder] = {
    ExtendedS3Destination: _s3,
    SplunkConfiguration: _splunk,
    HttpEndpointDestination: _http_endpoint,
    OpenSearchConfiguration: _opensearch,
    ElasticsearchConfiguration: _opensearch,
    RedshiftConfiguration: _redshift,
}


def build_destination(config: DeliveryStreamConfig, context: DestinationContext) -> Destination:
    """The destination a stream's config names."""
    return REGISTRY[type(config.destination)](config, context)


def build_error_output(config: DeliveryStreamConfig, context: DestinationContext) -> S3ErrorOutput:
    """The error output of a stream: error records of every stage and of its destination.

    Close it with the stream (`await error_output.close()`): it holds a shared store handle.
    """
    section = config.destination
    location = section.error_location()
    # Its prefix may then hold partition keys: the key format must know they are allowed.
    partitioned = (
        isinstance(section, ExtendedS3Destination) and section.partitioned and location is section
    )
    return S3ErrorOutput(
        config.name,
        location,
        context.store(location),
        encoder=context.encoder,
        dynamic_partitioning=partitioned,
        version=context.version,
    )


def build_source_backup(
    config: DeliveryStreamConfig, context: DestinationContext
) -> SourceBackup | None:
    """Where a stream also writes every record (S3's S3BackupMode Enabled: as they came; the
    other kinds' AllData: as delivered), else None.

    It buffers by its own hints; without an EndpointURL of its own it writes to the
    destination's store.
    """
    section = config.destination
    backup = section.backup_location()
    if backup is None:
        return None
    own_endpoint = section.endpoint_url if isinstance(section, S3Configuration) else None
    store = context.store(backup, own_endpoint)
    destination = S3Destination(config.name, backup, store, encoder=context.encoder)
    return SourceBackup(destination, backup.buffering_hints, processed=section.backs_up_processed)
