"""Every built-in processor is registered under its API `Type` and builds from a config."""

from __future__ import annotations

from typing import Any

import pytest

from firehose.processing_config import PROCESSOR_TYPES, ProcessorConfig
from transforms import kinesis_envelope, kpl
from transforms.processor import ProcessingContext, ProcessingRecord
from transforms.registry import ORDER, PROCESSORS

CONTEXT = ProcessingContext(
    "s", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s", "eu-west-1"
)
MINIMAL: dict[str, dict[str, Any]] = {
    "RecordDeAggregation": {"SubRecordType": "JSON"},
    "Decompression": {},
    "CloudWatchLogProcessing": {},
    "MetadataExtraction": {"MetadataExtractionQuery": "{id: .id}"},
    "AppendDelimiterToRecord": {},
}


def test_every_api_type_is_registered() -> None:
    assert set(MINIMAL) == set(PROCESSOR_TYPES) - {"Lambda"} == set(ORDER) - {"Lambda"}
    assert set(PROCESSORS) - {kpl.TYPE, kinesis_envelope.TYPE} == set(PROCESSOR_TYPES)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
async def test_builds_under_its_type(kind: str) -> None:
    config = ProcessorConfig.model_validate({"Type": kind, "parameters": MINIMAL[kind]})
    processor = PROCESSORS[kind](config, CONTEXT)
    assert processor.type == kind
    output = await processor.process([])
    assert (output.records, output.failed) == ([], [])
    await processor.close()


async def test_kpl_builds_without_a_config() -> None:
    processor = kpl.build(None, CONTEXT)
    assert processor.type == "KplDeaggregation"
    record = ProcessingRecord(1, 0, b"plain")
    assert (await processor.process([record])).records == [record]
