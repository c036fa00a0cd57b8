"""`CloudWatchLogProcessing`: reads CloudWatch Logs subscription payloads (already gunzipped by
`Decompression`), drops the health checks CloudWatch Logs sends, and with
`DataMessageExtraction` delivers each log event's message as its own record.

A record that is not such a payload goes to the error output as `processing-failed` with the
error code `CloudWatchLogProcessing.InvalidInput`.
"""

from __future__ import annotations

from typing import Any

import orjson

from firehose.processing_config import ProcessorConfig
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import SubSeqs, failure, split

OUTPUT_TYPE = "processing-failed"
INVALID_INPUT = "CloudWatchLogProcessing.InvalidInput"
DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"


class InvalidPayload(ValueError):
    """Not a CloudWatch Logs subscription payload; the message says why."""


def messages(data: bytes | memoryview) -> list[str] | None:
    """The log events' messages of a DATA_MESSAGE payload; None for a CONTROL_MESSAGE."""
    try:
        payload: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"the record is not JSON (is it still gzip'd?): {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("the record is not a JSON object")
    kind = payload.get("messageType")
    if kind == CONTROL_MESSAGE:
        return None
    if kind != DATA_MESSAGE:
        raise InvalidPayload(f"messageType is {kind!r}, not DATA_MESSAGE or CONTROL_MESSAGE")
    events = payload.get("logEvents")
    if not isinstance(events, list):
        raise InvalidPayload("a DATA_MESSAGE without a logEvents list")
    found = []
    for index, event in enumerate(events):
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, str):
            raise InvalidPayload(f"logEvents[{index}] has no message string")
        found.append(message)
    return found


class CloudWatchLogProcessing:
    type = "CloudWatchLogProcessing"

    def __init__(self, extract_messages: bool) -> None:
        self.extract_messages = extract_messages
        # CONTROL_MESSAGE records dropped so far: CloudWatch Logs' checks, not user data (a
        # batch processed again after a crash counts again).
        self.control_messages = 0

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        sub_seqs = SubSeqs()
        for record in records:
            try:
                found = messages(record.data)
            except InvalidPayload as exc:
                output.failed.append(failure(record, OUTPUT_TYPE, INVALID_INPUT, str(exc)))
                continue
            if found is None:
                self.control_messages += 1
            elif not self.extract_messages:
                output.records.append(record)
            else:
                first = sub_seqs.take(record.seq, len(found))
                output.records.extend(
                    split(record, message.encode(), first + index)
                    for index, message in enumerate(found)
                )
        return output

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig, context: ProcessingContext) -> CloudWatchLogProcessing:
    extract: bool = config.values()["DataMessageExtraction"]
    return CloudWatchLogProcessing(extract)
