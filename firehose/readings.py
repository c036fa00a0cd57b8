"""A stream's numbers under Firehose's metric names, read from the counters it keeps.

Totals (`IncomingRecords`, `DeliveryToS3.Bytes`, …) count since start; `DataFreshness` and
`PartitionCount` are what they are now. Keys starting with `_` are the raw counts the ratio
metrics are computed from (see firehose.metrics); they are not metrics themselves.
"""

from __future__ import annotations

from firehose.delivery import Output
from firehose.stage import PassThrough
from firehose.stream import DeliveryStream

BACKUP = "BackupToS3"


def delivery_prefix(stream: DeliveryStream) -> str:
    """`DeliveryTo<kind>`: the destination names its kind, the stream never does."""
    return f"DeliveryTo{stream.destination.kind}"


def stream_readings(stream: DeliveryStream) -> dict[str, float]:
    counters = stream.counters
    values: dict[str, float] = {
        "IncomingRecords": counters.incoming_records,
        "IncomingBytes": counters.incoming_bytes,
        "ThrottledRecords": counters.throttled_records,
        "_buffered_bytes": stream.main.buffers.held_bytes,
        "_delivery_failures": counters.delivery_failures,
    }
    _output_readings(values, stream, stream.main, delivery_prefix(stream))
    if stream.backup is not None:
        _output_readings(values, stream, stream.backup, BACKUP)
    if getattr(stream.config.destination, "partitioned", False):
        values["PartitionCount"] = stream.main.buffers.partitions
        values["_partition_count_exceeded"] = counters.partition_count_exceeded
    if not isinstance(stream.stage, PassThrough):
        processing = stream.processing
        values["SucceedProcessing.Records"] = processing.records
        values["SucceedProcessing.Bytes"] = processing.bytes
        values["_processing_calls"] = processing.calls
        values["_processing_failed_calls"] = processing.failed_calls
        values["_processing_seconds"] = processing.seconds
    return values


def _output_readings(
    values: dict[str, float], stream: DeliveryStream, output: Output, prefix: str
) -> None:
    counters = output.destination.counters
    values[f"{prefix}.Records"] = counters.records
    values[f"{prefix}.Bytes"] = counters.bytes
    values[f"{prefix}.DataFreshness"] = stream.data_freshness_seconds(output)
    values[f"_attempts.{prefix}"] = counters.attempts
    values[f"_successful_attempts.{prefix}"] = counters.successful_attempts
    own = f"DeliveryTo{counters.kind}."
    for name, amount in counters.published.items():
        if name.startswith(own):  # a backup's DeliveryToS3.* counters are BackupToS3.* ones
            name = f"{prefix}.{name.removeprefix(own)}"
        values[name] = amount
