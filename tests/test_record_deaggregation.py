"""RecordDeAggregation: JSON objects back to back or one a line, and delimited records."""

from __future__ import annotations

import base64

import orjson
import pytest

from firehose.processing_config import ProcessorConfig
from transforms.processor import KinesisRecordMetadata, ProcessingContext, ProcessingRecord
from transforms.record_deaggregation import RecordDeAggregation, build, split_json

CONTEXT = ProcessingContext(
    "clicks", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/c", "eu-west-1"
)


def deaggregation(sub_record_type: str, delimiter: bytes | None = None) -> RecordDeAggregation:
    parameters = {"SubRecordType": sub_record_type}
    if delimiter is not None:
        parameters["Delimiter"] = base64.b64encode(delimiter).decode()
    config = ProcessorConfig.model_validate(
        {"Type": "RecordDeAggregation", "parameters": parameters}
    )
    return build(config, CONTEXT)


def clicks(count: int) -> list[bytes]:
    return [
        orjson.dumps({"user": f"u{n}", "page": f"/p/{n}", "ms": 1722945600000 + n})
        for n in range(count)
    ]


async def test_json_one_object_a_line_keeps_each_objects_bytes() -> None:
    events = clicks(3)
    kinesis = KinesisRecordMetadata("shardId-000000000000", "pk", "4959", 1722945600000)
    record = ProcessingRecord(
        7, 1722945600123, b"\n".join(events) + b"\n", lambda_keys={"k": "v"}, kinesis=kinesis
    )
    output = await deaggregation("JSON").process([record])
    assert not output.failed
    assert [bytes(r.data) for r in output.records] == events
    assert [(r.seq, r.sub_seq, r.arrival_ms) for r in output.records] == [
        (7, 0, 1722945600123),
        (7, 1, 1722945600123),
        (7, 2, 1722945600123),
    ]
    assert all(r.lambda_keys == {"k": "v"} and r.kinesis is kinesis for r in output.records)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a":1}{"b":2}', [b'{"a":1}', b'{"b":2}']),
        (b'{"a":1}\r\n\r\n  {"b":2}\t\n', [b'{"a":1}', b'{"b":2}']),
        # Pretty-printed objects span lines.
        (
            b'{\n  "a": {\n    "b": 1\n  }\n}\n{\n  "c": 2\n}\n',
            [b'{\n  "a": {\n    "b": 1\n  }\n}', b'{\n  "c": 2\n}'],
        ),
        # `}{` inside a string is not a boundary.
        (b'{"s":"}{"}{"t":"\\"}{"}', [b'{"s":"}{"}', b'{"t":"\\"}{"}']),
        # Kept as written: no re-serialisation of spacing, key order or numbers.
        (
            b'{ "z" : 1.50, "a" : 12345678901234567890123 }',
            [b'{ "z" : 1.50, "a" : 12345678901234567890123 }'],
        ),
        (b'{"nested":[{"a":1},{"b":[]}]}{}', [b'{"nested":[{"a":1},{"b":[]}]}', b"{}"]),
    ],
)
def test_split_json(data: bytes, expected: list[bytes]) -> None:
    assert split_json(data) == expected


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'[{"a":1},{"b":2}]', "array"),
        (b'{"a":1}[1]', "array"),
        (b'{"a":1}{"b":', "ends inside"),
        (b'{"a":1} trailing', "not JSON"),
        (b'"just a string"', "string at the top level"),
        (b"42", "not JSON"),
        (b'{"a":1}}', "closing bracket"),
        (b'{"a":NaN}', "not valid JSON"),
        (b"   \n", "no JSON object"),
    ],
)
async def test_a_record_that_is_not_json_objects_is_processing_failed(
    data: bytes, why: str
) -> None:
    good = ProcessingRecord(1, 1000, b'{"ok":true}')
    bad = ProcessingRecord(2, 2000, memoryview(data), sub_seq=3)
    output = await deaggregation("JSON").process([good, bad])
    assert [bytes(r.data) for r in output.records] == [b'{"ok":true}']
    [failed] = output.failed
    assert failed.output_type == "processing-failed"
    assert failed.error_code == "RecordDeAggregation.InvalidJson"
    assert why in failed.error_message
    assert bytes(failed.record.data) == data
    assert (failed.record.seq, failed.record.sub_seq, failed.record.arrival_ms) == (2, 3, 2000)


async def test_at_most_500_sub_records() -> None:
    processor = deaggregation("JSON")
    full = b"".join(clicks(500))
    output = await processor.process([ProcessingRecord(1, 0, full)])
    assert len(output.records) == 500 and output.records[-1].sub_seq == 499
    over = b"\n".join(clicks(501))
    output = await processor.process([ProcessingRecord(2, 0, over)])
    assert not output.records
    [failed] = output.failed
    assert failed.output_type == "processing-failed"
    assert failed.error_code == "RecordDeAggregation.TooManySubRecords"
    assert "501" in failed.error_message
    assert failed.record.data == over


async def test_delimited() -> None:
    processor = deaggregation("DELIMITED", b"||")
    records = [
        ProcessingRecord(1, 0, b"a,1||b,2||c,3||"),  # a trailing delimiter ends the last one
        ProcessingRecord(2, 0, memoryview(b"one")),
        ProcessingRecord(3, 0, b"x||||y"),  # an empty piece between two delimiters stays
    ]
    output = await processor.process(records)
    assert [(r.seq, r.sub_seq, bytes(r.data)) for r in output.records] == [
        (1, 0, b"a,1"),
        (1, 1, b"b,2"),
        (1, 2, b"c,3"),
        (2, 0, b"one"),
        (3, 0, b"x"),
        (3, 1, b""),
        (3, 2, b"y"),
    ]


async def test_delimited_over_500() -> None:
    data = b"\n".join(b"line %d" % n for n in range(501))
    output = await deaggregation("DELIMITED", b"\n").process([ProcessingRecord(1, 0, data)])
    assert [f.error_code for f in output.failed] == ["RecordDeAggregation.TooManySubRecords"]


async def test_records_already_split_stay_distinct() -> None:
    """Sub-records of one log record split again are numbered on, not from 0 each time."""
    records = [ProcessingRecord(5, 0, b'{"a":1}{"b":2}', 0), ProcessingRecord(5, 0, b'{"c":3}', 1)]
    output = await deaggregation("JSON").process(records)
    assert [(r.seq, r.sub_seq) for r in output.records] == [(5, 0), (5, 1), (5, 2)]
