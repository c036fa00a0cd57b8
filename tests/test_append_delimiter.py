"""AppendDelimiterToRecord: a newline by default, or the given bytes."""

from __future__ import annotations

from firehose.processing_config import ProcessorConfig
from transforms.append_delimiter import build
from transforms.processor import ProcessingContext, ProcessingRecord

CONTEXT = ProcessingContext(
    "c", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/c", "eu-west-1"
)


async def test_appends_a_newline_by_default() -> None:
    processor = build(ProcessorConfig.model_validate({"Type": "AppendDelimiterToRecord"}), CONTEXT)
    records = [
        ProcessingRecord(1, 5, b'{"a":1}', 2, {"l": "1"}, {"q": "2"}),
        ProcessingRecord(2, 6, memoryview(b'{"b":2}')),
    ]
    output = await processor.process(records)
    assert [(r.seq, r.sub_seq, bytes(r.data)) for r in output.records] == [
        (1, 2, b'{"a":1}\n'),
        (2, 0, b'{"b":2}\n'),
    ]
    assert (output.records[0].lambda_keys, output.records[0].query_keys) == ({"l": "1"}, {"q": "2"})
    assert not output.failed


async def test_appends_the_given_delimiter() -> None:
    config = ProcessorConfig.model_validate(
        {
            "Type": "AppendDelimiterToRecord",
            "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "fHw="}],
        }
    )
    output = await build(config, CONTEXT).process([ProcessingRecord(1, 0, b"row")])
    assert [bytes(r.data) for r in output.records] == [b"row||"]
