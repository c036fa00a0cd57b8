"""Sources by stream type: what the service builds besides the API to feed its streams."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from firehose.config import DeliveryStreamConfig, KinesisStreamSource
from firehose.settings import Settings
from firehose.source import Source
from firehose.sources.dynamo_leases import DynamoLeaseStore
from firehose.sources.kinesis import KinesisSource
from firehose.sources.leases import LeaseStore, LocalLeaseStore
from firehose.sources.shard_reader import ReadSettings
from firehose.stream import DeliveryStream

# Our own retries and backoff (counted, visible), not botocore's hidden ones.
_CLIENT_CONFIG = AioConfig(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30)


def kinesis_stream_arn(config: DeliveryStreamConfig) -> str | None:
    return None if config.kinesis_source is None else config.kinesis_source.kinesis_stream_arn


def lease_table_name(settings: Settings, stream_name: str, kinesis_streams: int) -> str | None:
    """One table per data stream read: the name given, suffixed by the delivery stream's name
    when several delivery streams read Kinesis."""
    if settings.lease_table is None:
        return None
    return settings.lease_table if kinesis_streams == 1 else f"{settings.lease_table}-{stream_name}"


def build_sources(settings: Settings, streams: dict[str, DeliveryStream]) -> list[Source]:
    kinesis = [stream for stream in streams.values() if stream.config.kinesis_source is not None]
    sources: list[Source] = []
    for stream in kinesis:
        source = stream.config.kinesis_source
        assert source is not None
        table = lease_table_name(settings, stream.name, len(kinesis))
        sources.append(kinesis_source(settings, stream, source, table))
    return sources


def kinesis_source(
    settings: Settings,
    stream: DeliveryStream,
    source: KinesisStreamSource,
    table: str | None,
    **client_args: Any,
) -> KinesisSource:
    """A reader of `source` into `stream`; leases in DynamoDB `table`, else in the data dir."""

    @contextlib.asynccontextmanager
    async def open_clients() -> AsyncIterator[tuple[Any, Any]]:
        session = get_session()
        async with contextlib.AsyncExitStack() as stack:
            kinesis = await stack.enter_async_context(
                session.create_client(
                    "kinesis", region_name=source.region, config=_CLIENT_CONFIG, **client_args
                )
            )
            dynamodb = None
            if table is not None:
                dynamodb = await stack.enter_async_context(
                    session.create_client("dynamodb", region_name=source.region, **client_args)
                )
            yield kinesis, dynamodb

    make_store: Callable[[Any], LeaseStore]
    if table is None:
        path = settings.data_dir / "sources" / stream.name / "leases.json"
        make_store = lambda _: LocalLeaseStore(path)  # noqa: E731
    else:
        make_store = lambda dynamodb: DynamoLeaseStore(dynamodb, table)  # noqa: E731
    return KinesisSource(
        stream,
        source.stream_name,
        open_clients,
        make_store,
        start_position=settings.kinesis_start_position,
        lease_seconds=settings.lease_seconds,
        read=ReadSettings(
            poll_seconds=settings.kinesis_poll_seconds,
            start_timestamp=settings.kinesis_start_timestamp,
        ),
    )
