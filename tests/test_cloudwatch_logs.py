"""CloudWatchLogProcessing, on payloads made as CloudWatch Logs makes them: gzip'd JSON, run
through Decompression first as Firehose does."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from firehose.processing_config import ProcessorConfig
from transforms import cloudwatch_logs, decompression
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput

CONTEXT = ProcessingContext(
    "logs", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/l", "eu-west-1"
)
EVENTS = [
    {
        "id": "38133483471927427339285023587452416520311862473372614656",
        "timestamp": 1722945600000,
        "message": "START RequestId: 6bd8e1d5-0f4a-4b5e-9a43-bd2c5b0f1c4e Version: $LATEST",
    },
    {
        "id": "38133483471927427339285023587452416520311862473372614657",
        "timestamp": 1722945600012,
        "message": '{"level":"INFO","msg":"order placed","total":9.99,"city":"Zürich"}',
    },
    {
        "id": "38133483471927427339285023587452416520311862473372614658",
        "timestamp": 1722945600020,
        "message": "END RequestId: 6bd8e1d5-0f4a-4b5e-9a43-bd2c5b0f1c4e",
    },
]


def subscription_record(payload: dict[str, Any]) -> bytes:
    """As CloudWatch Logs puts it to Firehose: the JSON, gzip'd."""
    return gzip.compress(json.dumps(payload, separators=(",", ":")).encode())


def data_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/orders",
        "logStream": "2024/08/06/[$LATEST]0f1a2b3c4d5e6f708192a3b4c5d6e7f8",
        "subscriptionFilters": ["orders-to-firehose"],
        "logEvents": events,
    }


CONTROL = {
    "messageType": "CONTROL_MESSAGE",
    "owner": "CloudwatchLogs",
    "logGroup": "",
    "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [
        {
            "id": "",
            "timestamp": 1722945600000,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
        }
    ],
}


def processor(extract: bool) -> cloudwatch_logs.CloudWatchLogProcessing:
    config = ProcessorConfig.model_validate(
        {"Type": "CloudWatchLogProcessing", "parameters": {"DataMessageExtraction": extract}}
    )
    return cloudwatch_logs.build(config, CONTEXT)


async def through(
    step: cloudwatch_logs.CloudWatchLogProcessing, records: list[ProcessingRecord]
) -> ProcessorOutput:
    gunzip = decompression.build(ProcessorConfig.model_validate({"Type": "Decompression"}), CONTEXT)
    decompressed = await gunzip.process(records)
    assert not decompressed.failed
    return await step.process(decompressed.records)


async def test_extraction_gives_one_record_per_log_event() -> None:
    step = processor(extract=True)
    records = [
        ProcessingRecord(1, 100, subscription_record(CONTROL)),
        ProcessingRecord(2, 200, subscription_record(data_message(EVENTS)), query_keys={"q": "x"}),
        ProcessingRecord(3, 300, subscription_record(data_message(EVENTS[1:2]))),
    ]
    output = await through(step, records)
    assert not output.failed
    assert [(r.seq, r.sub_seq, bytes(r.data).decode()) for r in output.records] == [
        (2, 0, EVENTS[0]["message"]),
        (2, 1, EVENTS[1]["message"]),
        (2, 2, EVENTS[2]["message"]),
        (3, 0, EVENTS[1]["message"]),
    ]
    assert all(r.query_keys == {"q": "x"} for r in output.records[:3])
    assert step.control_messages == 1


async def test_without_extraction_data_messages_pass_whole() -> None:
    step = processor(extract=False)
    payload = json.dumps(data_message(EVENTS), separators=(",", ":")).encode()
    records = [
        ProcessingRecord(1, 100, subscription_record(data_message(EVENTS))),
        ProcessingRecord(2, 200, subscription_record(CONTROL)),
    ]
    output = await through(step, records)
    assert not output.failed
    assert [(r.seq, bytes(r.data)) for r in output.records] == [(1, payload)]
    assert step.control_messages == 1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (subscription_record(data_message(EVENTS)), "still gzip"),  # Decompression not run
        (b"plain text log line", "not JSON"),
        (b'["DATA_MESSAGE"]', "not a JSON object"),
        (b'{"logEvents":[]}', "messageType"),
        (b'{"messageType":"DATA_MESSAGE","logGroup":"/g"}', "logEvents"),
        (b'{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1}]}', "message"),
    ],
)
async def test_a_record_that_is_not_a_subscription_payload_is_processing_failed(
    data: bytes, why: str
) -> None:
    output = await processor(extract=True).process([ProcessingRecord(9, 900, data, sub_seq=1)])
    assert not output.records
    [failed] = output.failed
    assert failed.output_type == "processing-failed"
    assert failed.error_code == "CloudWatchLogProcessing.InvalidInput"
    assert why in failed.error_message
    assert (failed.record.seq, failed.record.sub_seq, failed.record.data) == (9, 1, data)
