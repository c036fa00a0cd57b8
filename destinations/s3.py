"""Extended S3 destination: one object per batch, keyed and compressed exactly as Firehose does.

With dynamic partitioning a batch holds one partition's records, and its prefix is evaluated
with that partition's keys (`Batch.partition`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from destinations.objectstore import ObjectStore
from firehose.batch import Batch
from firehose.compression import get_codec
from firehose.config import ExtendedS3Destination, S3Configuration
from firehose.destination import DELIVERED, DeliveryResult, DestinationCounters, FailedRecord
from firehose.errors import DeliveryError
from firehose.formats.convert import Converted, RecordConverter
from firehose.formats.loading import SchemaUnavailable, load_columns
from firehose.keys import (
    PARTITION_KEY_FROM_LAMBDA,
    PARTITION_KEY_FROM_QUERY,
    KeyTooLongError,
    MissingPartitionKeyError,
    ObjectKeyFormat,
    partition_key_maps,
)

# Firehose's count of objects written, kept beside the counters every destination has.
OBJECT_COUNT = "DeliveryToS3.ObjectCount"
CONVERSION_COUNTS = (
    "SucceedConversion.Records",
    "SucceedConversion.Bytes",
    "FailedConversion.Records",
    "FailedConversion.Bytes",
)


class S3Destination:
    """Concatenates a batch's records (no delimiter), compresses them off the loop, uploads;
    with format conversion, converts them off the loop instead."""

    kind = "S3"

    def __init__(
        self,
        stream_name: str,
        config: S3Configuration,
        store: ObjectStore,
        *,
        encoder: Executor | None = None,
        version: int = 1,
        dynamic_partitioning: bool = False,
        region: str = "us-east-1",
        account_id: str = "000000000000",
    ) -> None:
        self.config = config
        self.store = store
        self.codec = get_codec(config.compression_format)
        self.keys = ObjectKeyFormat(
            stream_name=stream_name,
            version=version,
            prefix=config.prefix,
            error_output_prefix=config.error_output_prefix,
            extension=config.extension,
            time_zone=config.key_time_zone,
            dynamic_partitioning=dynamic_partitioning,
        )
        self._encoder = encoder
        self.target = f"s3://{config.bucket} at {store.description}"
        self.counters = DestinationCounters(self.kind)
        conversion = config.conversion if isinstance(config, ExtendedS3Destination) else None
        self.conversion = conversion
        # Shown from the start (at 0), so a scraper sees each counter before it first moves.
        for name in (OBJECT_COUNT, *(CONVERSION_COUNTS if conversion is not None else ())):
            self.counters.publish(name, 0)
        self._region = region
        self._account_id = account_id
        self._converter: RecordConverter | None = None

    async def start(self) -> None:
        await self.store.start()

    def object_key(self, batch: Batch) -> str:
        assert batch.oldest_arrival_ms is not None
        keys = partition_key_maps(batch.partition)
        try:
            return self.keys.object_key(
                batch.oldest_arrival_ms,
                batch.object_id,
                partition_keys=keys[PARTITION_KEY_FROM_QUERY],
                lambda_partition_keys=keys[PARTITION_KEY_FROM_LAMBDA],
            )
        except (KeyTooLongError, MissingPartitionKeyError) as exc:
            # The router checks both per record, so this is a bug, never a record's fault.
            raise DeliveryError(str(exc), retriable=False, code="S3.KeyTooLong") from exc

    async def deliver(self, batch: Batch) -> DeliveryResult:
        if self.conversion is not None:
            return await self._deliver_converted(batch)
        key = self.object_key(batch)
        entry_name = key.rsplit("/", 1)[-1].removesuffix(self.codec.extension)
        body = await asyncio.get_running_loop().run_in_executor(
            self._encoder, self.codec.compress, batch.chunks(), entry_name
        )
        await self.store.put(self.config.bucket, key, body)
        self.counters.publish(OBJECT_COUNT, 1)
        return DELIVERED

    async def _converter_ready(self) -> RecordConverter:
        """The converter, built at first use: a Glue schema is read then (and again after a
        failure to read it, which fails the attempt, so the stream retries)."""
        if self._converter is None:
            assert self.conversion is not None
            try:
                columns = await load_columns(self.conversion.schema_source, self._region)
            except SchemaUnavailable as exc:
                raise DeliveryError(str(exc), code=exc.code) from exc
            self._converter = RecordConverter(self.conversion, columns)
        return self._converter

    async def _deliver_converted(self, batch: Batch) -> DeliveryResult:
        converter = await self._converter_ready()
        key = self.object_key(batch)
        segments = [(run.data, run.lengths) for run in batch.runs]
        converted = await asyncio.get_running_loop().run_in_executor(
            self._encoder, _convert, converter, segments
        )
        if converted.body is not None:
            assert isinstance(converted.body, bytes)
            await self.store.put(self.config.bucket, key, converted.body)
            self.counters.publish(OBJECT_COUNT, 1)
        failed = self._failed(batch, converted)
        failed_bytes = sum(len(item.record.data) for item in failed)
        counts = (
            batch.record_count - len(failed),
            batch.size_bytes - failed_bytes,
            len(failed),
            failed_bytes,
        )
        for name, amount in zip(CONVERSION_COUNTS, counts, strict=True):
            self.counters.publish(name, amount)
        return DeliveryResult(failed=failed)

    def _failed(self, batch: Batch, converted: Converted) -> list[FailedRecord]:
        if not converted.failures:
            return []
        assert self.conversion is not None
        schema = self.conversion.schema_source
        region = schema.region or self._region
        catalog_id = schema.catalog_id or self._account_id
        table = {
            "catalogId": catalog_id,
            "databaseName": schema.database_name,
            "tableName": schema.table_name,
            "region": region,
            "versionId": schema.version_id,
            "catalogArn": f"arn:aws:glue:{region}:{catalog_id}:catalog",
        }
        why = {failure.index: failure for failure in converted.failures}
        failed = []
        for index, record in enumerate(batch.records()):
            failure = why.get(index)
            if failure is not None:
                details = {
                    "sequenceNumber": str(record.seq),
                    "subSequenceNumber": record.sub_seq,
                    "dataCatalogTable": table,
                }
                failed.append(
                    FailedRecord(
                        record,
                        "format-conversion-failed",
                        failure.code,
                        failure.message,
                        details=details,
                        retriable=False,
                    )
                )
        return failed

    async def close(self) -> None:
        await self.store.close()


def _convert(converter: RecordConverter, segments: list[tuple[memoryview, list[int]]]) -> Converted:
    """In an encoder thread: convert, and copy the body out of Arrow's buffer for the store."""
    converted = converter.convert(segments)
    if converted.body is not None and not isinstance(converted.body, bytes):
        converted.body = converted.body.to_pybytes()
    return converted
