"""Processor types by the API's `Type`, and the fixed order Firehose runs them in."""

from __future__ import annotations

from collections.abc import Callable

from firehose.processing_config import ProcessorConfig
from transforms import lambda_transform
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

PROCESSORS: dict[str, Builder] = {}
PROCESSORS["Lambda"] = lambda_transform.build
