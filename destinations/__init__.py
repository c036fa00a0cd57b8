"""Destinations: one module each behind `firehose.destination.Destination`, and their registry."""

from __future__ import annotations

from concurrent.futures import Executor

from destinations.objectstore import open_object_store
from destinations.s3 import S3Destination
from firehose.config import DeliveryStreamConfig
from firehose.destination import Destination
from firehose.settings import Settings


def build_destination(
    config: DeliveryStreamConfig, settings: Settings, *, encoder: Executor | None = None
) -> Destination:
    """The destination a stream's config names; the service setting overrides its endpoint."""
    endpoint = settings.s3_endpoint_url or config.s3.endpoint_url
    store = open_object_store(endpoint, region=settings.region)
    return S3Destination(config.name, config.s3, store, encoder=encoder)
