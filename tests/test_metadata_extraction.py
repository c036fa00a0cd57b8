"""MetadataExtraction: jq object constructors over JSON records, keys rendered as jq 1.6 does."""

from __future__ import annotations

import pytest

from firehose.processing_config import ProcessorConfig
from transforms.metadata_extraction import MetadataExtraction, build
from transforms.processor import ProcessingContext, ProcessingRecord

CONTEXT = ProcessingContext(
    "clicks", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/c", "eu-west-1"
)
QUERY = "{customer_id: .customer.id, year: .event_time[0:4], premium: .customer.premium}"
CLICK = (
    b'{"customer":{"id":"c-42","premium":true},"event_time":"2024-08-06T12:00:00Z",'
    b'"amount":1.50,"count":3.0e2}'
)


def extraction(query: str = QUERY) -> MetadataExtraction:
    config = ProcessorConfig.model_validate(
        {
            "Type": "MetadataExtraction",
            "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
            ],
        }
    )
    return build(config, CONTEXT)


async def test_sets_the_query_keys_and_keeps_the_record() -> None:
    record = ProcessingRecord(3, 30, memoryview(CLICK), 2, lambda_keys={"from": "lambda"})
    output = await extraction().process([record])
    assert not output.failed
    [result] = output.records
    assert result.query_keys == {"customer_id": "c-42", "year": "2024", "premium": "true"}
    assert (result.seq, result.sub_seq, bytes(result.data)) == (3, 2, CLICK)
    assert result.lambda_keys == {"from": "lambda"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{n: .amount}", "1.5"),
        ("{n: .count}", "300"),  # as jq 1.6 writes 3.0e2
        ("{n: (.count / 100 | floor)}", "3"),
        ("{n: 1.0}", "1"),
        ("{n: 0.1}", "0.1"),
        ("{n: .customer.premium}", "true"),
        ("{n: (.customer.premium | not)}", "false"),
        ("{n: .customer.id}", "c-42"),
        ('{n: .event_time | split("-")[1]} # the month', "08"),
        ("def month: .event_time[5:7]; {n: month}", "08"),
    ],
)
def test_values_are_rendered_as_jq_tostring(query: str, expected: str) -> None:
    assert extraction(query).keys(CLICK) == {"n": expected}


@pytest.mark.parametrize(
    ("query", "data", "why"),
    [
        (QUERY, b"customer=c-42 year=2024", "not JSON"),
        (QUERY, b'{"customer":{"id":"c-42"', "not JSON"),
        (QUERY, b'{"customer":{"id":"c\xff"}}', "not UTF-8"),
        (QUERY, b'["c-42"]', "Cannot index array"),
        (QUERY, b'{"customer":{"id":"c-42"},"event_time":"2024"}', '"premium" is null'),
        ("{customer: .customer}", CLICK, '"customer" is an object'),
        ("{ids: [.customer.id]}", CLICK, '"ids" is an array'),
        (".customer.id", CLICK, "gave string, not an object"),
        ("{a: .x} | select(false)", CLICK, "gave 0 results"),
        ("{id: .customer.id}", CLICK + b"\n" + CLICK, "gave 2 results"),
        ('{id: error("no id")}', CLICK, "no id"),
    ],
)
async def test_a_record_without_keys_is_partitioning_failed(
    query: str, data: bytes, why: str
) -> None:
    record = ProcessingRecord(8, 80, data, 1)
    output = await extraction(query).process([record])
    assert not output.records
    [failed] = output.failed
    assert failed.output_type == "partitioning-failed"
    assert failed.error_code == "DynamicPartitioning.MetadataExtractionFailed"
    assert why in failed.error_message
    assert (failed.record.seq, failed.record.sub_seq, failed.record.data) == (8, 1, data)
    assert record.query_keys is None


async def test_good_and_bad_records_keep_their_order() -> None:
    records = [ProcessingRecord(n, n, CLICK if n % 2 else b"not json") for n in range(6)]
    output = await extraction().process(records)
    assert [r.seq for r in output.records] == [1, 3, 5]
    assert [f.record.seq for f in output.failed] == [0, 2, 4]
