"""Processor types by the API's `Type`, and the fixed order Firehose runs them in."""

from __future__ import annotations

from collections.abc import Callable

from firehose.processing_config import ProcessorConfig
from transforms import (
    append_delimiter,
    cloudwatch_logs,
    decompression,
    kinesis_envelope,
    kpl,
    lambda_transform,
    metadata_extraction,
    record_deaggregation,
)
from transforms.processor import ProcessingContext, Processor

Builder = Callable[[ProcessorConfig, ProcessingContext], Processor]

# Firehose applies processors in this order whatever order the config lists them in:
# decompress, extract CloudWatch Logs messages, de-aggregate, transform, extract partition keys,
# then append the delimiter to what will be delivered.
ORDER = (
    "Decompression",
    "CloudWatchLogProcessing",
    "RecordDeAggregation",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
)

PROCESSORS: dict[str, Builder] = {
    "RecordDeAggregation": record_deaggregation.build,
    "Lambda": lambda_transform.build,
    "Decompression": decompression.build,
    "CloudWatchLogProcessing": cloudwatch_logs.build,
    "MetadataExtraction": metadata_extraction.build,
    "AppendDelimiterToRecord": append_delimiter.build,
    # Not an API type: a Kinesis source runs it before ORDER (build takes config=None).
    kpl.TYPE: kpl.build,
    kinesis_envelope.TYPE: kinesis_envelope.build,
}

# What a Kinesis source runs before ORDER: unwrap the log's envelope, then undo KPL aggregation.
KINESIS_SOURCE_STEPS = (kinesis_envelope.TYPE, kpl.TYPE)
