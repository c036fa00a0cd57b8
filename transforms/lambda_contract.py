"""Firehose's Lambda transform contract: the event it sends, the answer it takes, its error codes.

Every way of running a function (worker processes, threads, inline, a real Lambda) hands back
the same thing, the response body as bytes, so one reader here judges all of them alike.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson
import pybase64

from transforms.processor import KinesisRecordMetadata, ProcessingContext, ProcessingRecord

# Lambda's synchronous invocation limit, for the request and for the response alike.
PAYLOAD_LIMIT = 6 * 1024 * 1024

FUNCTION_ERROR = "Lambda.FunctionError"
FUNCTION_TIMED_OUT = "Lambda.FunctionTimedOut"
JSON_PROCESSING = "Lambda.JsonProcessingException"
MISSING_RECORD_ID = "Lambda.MissingRecordId"
DUPLICATED_RECORD_ID = "Lambda.DuplicatedRecordId"
INVOKE_LIMIT_EXCEEDED = "Lambda.InvokeLimitExceeded"
RESOURCE_NOT_FOUND = "Lambda.ResourceNotFound"
INVOKE_ACCESS_DENIED = "Lambda.InvokeAccessDenied"
# Ours: the function answered ProcessingFailed for the record.
PROCESSING_FAILED = "Lambda.ProcessingFailed"
# Ours: one record whose event alone is over PAYLOAD_LIMIT; it is never sent.
REQUEST_TOO_LARGE = "Lambda.RequestEntityTooLarge"

MESSAGES = {
    FUNCTION_ERROR: "The Lambda function was invoked but it returned an error result.",
    FUNCTION_TIMED_OUT: "The Lambda function invocation timed out.",
    JSON_PROCESSING: "The Lambda function's response does not follow the transform contract.",
    MISSING_RECORD_ID: "One or more record ids were not returned. The Lambda function must "
    "return every record id it receives.",
    DUPLICATED_RECORD_ID: "Multiple records were returned with the same record id. The Lambda "
    "function must return each record id once.",
    INVOKE_LIMIT_EXCEEDED: "The Lambda concurrent execution limit is exceeded.",
    RESOURCE_NOT_FOUND: "The Lambda function does not exist.",
    INVOKE_ACCESS_DENIED: "Access was denied invoking the Lambda function.",
    PROCESSING_FAILED: "The Lambda function returned ProcessingFailed for the record.",
    REQUEST_TOO_LARGE: f"The record does not fit in a Lambda request of {PAYLOAD_LIMIT} bytes.",
}


class InvokeError(Exception):
    """An invocation that gave no usable answer; `retryable` ones are tried again."""

    def __init__(self, code: str, detail: str = "", *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.retryable = retryable

    @property
    def message(self) -> str:
        """Firehose's sentence for the code, then what exactly happened."""
        base = MESSAGES.get(self.code, "The Lambda function invocation failed.")
        return f"{base} {self.detail}" if self.detail else base


# {"recordId":"","approximateArrivalTimestamp":,"data":""} without the id and the number.
_PLAIN_ENTRY = 56


def encoded_length(size: int) -> int:
    """Length of the base64 text of `size` bytes."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True)
class EventShape:
    """Builds one stream's events and knows their exact serialised size without building them."""

    stream_arn: str
    region: str
    source_kinesis_stream_arn: str | None = None

    @classmethod
    def of(cls, context: ProcessingContext) -> EventShape:
        return cls(context.stream_arn, context.region, context.source_kinesis_stream_arn)

    def _envelope(self, invocation_id: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "invocationId": invocation_id,
            "deliveryStreamArn": self.stream_arn,
            "region": self.region,
        }
        if self.source_kinesis_stream_arn is not None:
            event["sourceKinesisStreamArn"] = self.source_kinesis_stream_arn
        event["records"] = []
        return event

    def envelope_size(self, invocation_id: str) -> int:
        """Bytes of an event with no records (a uuid4 id always has the same length)."""
        return len(orjson.dumps(self._envelope(invocation_id)))

    def _entry(self, record_id: str, record: ProcessingRecord, data: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "recordId": record_id,
            "approximateArrivalTimestamp": record.arrival_ms,
            "data": data,
        }
        if self.source_kinesis_stream_arn is not None and record.kinesis is not None:
            kinesis = record.kinesis
            entry["kinesisRecordMetadata"] = {
                "shardId": kinesis.shard_id,
                "partitionKey": kinesis.partition_key,
                "approximateArrivalTimestamp": kinesis.approximate_arrival_ms,
                "sequenceNumber": kinesis.sequence_number,
                "subsequenceNumber": kinesis.sub_sequence_number,
            }
        return entry

    def entry_size(self, record_id: str, record: ProcessingRecord) -> int:
        """Bytes of the record's entry in an event: base64 text needs no JSON escaping, and
        nor do our record ids (digits), so the plain entry is counted, not serialised."""
        data = encoded_length(len(record.data))
        if record.kinesis is None or self.source_kinesis_stream_arn is None:
            return _PLAIN_ENTRY + len(record_id) + len(str(record.arrival_ms)) + data
        return len(orjson.dumps(self._entry(record_id, record, ""))) + data

    def event(self, invocation_id: str, records: Sequence[tuple[str, ProcessingRecord]]) -> bytes:
        """The serialised event; its length is envelope_size + entry sizes + commas."""
        event = self._envelope(invocation_id)
        event["records"] = [
            self._entry(record_id, record, pybase64.b64encode(record.data).decode("ascii"))
            for record_id, record in records
        ]
        return orjson.dumps(event)


class Answer(NamedTuple):
    """What the response says of one record: delivered (Ok), dropped, or failed with a code.

    A named tuple: workers send thousands of them back per invocation, and tuples pickle fast.
    """

    result: Literal["Ok", "Dropped", "Failed"]
    data: bytes = b""
    partition_keys: dict[str, str] | None = None
    error_code: str = ""
    error_message: str = ""


# What a worker is sent per record: (record id, arrival ms, data, Kinesis metadata).
WireRecord = tuple[str, int, bytes, KinesisRecordMetadata | None]


def answer_wire_event(
    shape: EventShape,
    invocation_id: str,
    wire: Sequence[WireRecord],
    call: Callable[[bytes], bytes],
) -> list[Answer]:
    """`answer_event` for records as sent to a worker process."""
    items = [
        (record_id, ProcessingRecord(0, arrival_ms, data, kinesis=kinesis))
        for record_id, arrival_ms, data, kinesis in wire
    ]
    return answer_event(shape, invocation_id, items, call)


def answer_event(
    shape: EventShape,
    invocation_id: str,
    items: Sequence[tuple[str, ProcessingRecord]],
    call: Callable[[bytes], bytes],
) -> list[Answer]:
    """Build the event, `call` the function with it, read its answer: one invocation, wherever
    it runs (a worker process does all three, off the service's loop)."""
    body = call(shape.event(invocation_id, items))
    return read_response(body, [record_id for record_id, _ in items])


def _failed(code: str, detail: str = "") -> Answer:
    base = MESSAGES[code]
    return Answer("Failed", error_code=code, error_message=f"{base} {detail}" if detail else base)


def read_response(body: bytes, record_ids: Sequence[str]) -> list[Answer]:
    """One Answer per id in `record_ids`, in order; InvokeError when the whole body is unusable.

    The body must be a JSON object whose `records` is a list, else every record fails with
    Lambda.JsonProcessingException. Then, record by record: an id answered by no entry fails
    with Lambda.MissingRecordId; an id answered twice or more fails with
    Lambda.DuplicatedRecordId; an entry with a bad `result`, an Ok without valid base64 `data`,
    or `metadata.partitionKeys` that is not an object of strings fails its record with
    Lambda.JsonProcessingException. Entries that name no id of the event (not an object, no
    string `recordId`, an unknown id) cannot be pinned on a record and are ignored; the records
    they should have answered then count as missing. Every other record goes through.
    """
    _check_size(body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvokeError(JSON_PROCESSING, f"The response is not JSON: {exc}.") from None
    if not isinstance(parsed, dict):
        raise InvokeError(JSON_PROCESSING, "The response is not a JSON object.")
    entries = parsed.get("records")
    if not isinstance(entries, list):
        raise InvokeError(JSON_PROCESSING, "The response has no list of records.")
    wanted = set(record_ids)
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if isinstance(entry, dict):
            record_id = entry.get("recordId")
            if isinstance(record_id, str) and record_id in wanted:
                found.setdefault(record_id, []).append(entry)
    answers = []
    for record_id in record_ids:
        given = found.get(record_id)
        if not given:
            answers.append(_failed(MISSING_RECORD_ID))
        elif len(given) > 1:
            answers.append(_failed(DUPLICATED_RECORD_ID, f"{record_id} came {len(given)} times."))
        else:
            answers.append(_read_entry(given[0]))
    return answers


def _check_size(body: bytes) -> None:
    if len(body) > PAYLOAD_LIMIT:
        raise InvokeError(
            FUNCTION_ERROR,
            f"The response is {len(body)} bytes, over Lambda's limit of {PAYLOAD_LIMIT}.",
            retryable=True,
        )


def _read_entry(entry: dict[str, Any]) -> Answer:
    result = entry.get("result")
    if result == "Dropped":
        return Answer("Dropped")
    if result == "ProcessingFailed":
        return _failed(PROCESSING_FAILED)
    if result != "Ok":
        return _failed(
            JSON_PROCESSING, f"result must be Ok, Dropped or ProcessingFailed: {result!r}."
        )
    data = entry.get("data")
    if not isinstance(data, str):
        return _failed(JSON_PROCESSING, "An Ok record needs data, a base64 string.")
    try:
        decoded = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return _failed(JSON_PROCESSING, "The record's data is not valid base64.")
    metadata = entry.get("metadata")
    keys = None
    if metadata is not None:
        keys = metadata.get("partitionKeys") if isinstance(metadata, dict) else metadata
        if keys is not None and not (
            isinstance(keys, dict) and all(isinstance(v, str) for v in keys.values())
        ):
            return _failed(JSON_PROCESSING, "metadata.partitionKeys must map names to strings.")
    return Answer("Ok", data=decoded, partition_keys=keys or None)


class PayloadInvoker:
    """`invoke_records` for invokers that only move payloads (threads, inline, real Lambda):
    the event is built and the answer read here, on the caller's loop."""

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        raise NotImplementedError

    async def invoke_records(
        self,
        shape: EventShape,
        invocation_id: str,
        items: Sequence[tuple[str, ProcessingRecord]],
        timeout: float,
    ) -> list[Answer]:
        body = await self.invoke(shape.event(invocation_id, items), timeout)
        return read_response(body, [record_id for record_id, _ in items])


# A slice of records as sent to a worker process in one piece: (the first record's id, counted
# on for the others; arrival ms; data lengths; the records' data back to back). Records without
# Kinesis metadata only.
Segment = tuple[int, int, list[int], bytes | memoryview]
# What a worker answers for a segment: the data lengths of its records answered Ok (without
# partition keys; -1 for any other record), their data back to back, and the Answer of every
# other record by its index in the segment.
SegmentAnswer = tuple[list[int], bytes | memoryview, dict[int, Answer]]


def segment_event(
    shape: EventShape, invocation_id: str, segments: Sequence[Segment]
) -> tuple[dict[str, Any], list[str]]:
    """The event of records without Kinesis metadata, as the handler receives it (what
    `EventShape.event` serialises, parsed back), and its record ids. Built as objects: a
    function in this service's workers needs no JSON text of its event."""
    event = shape._envelope(invocation_id)
    entries: list[dict[str, Any]] = []
    record_ids: list[str] = []
    encode = pybase64.b64encode_as_string
    for next_id, arrival_ms, lengths, data in segments:
        view = memoryview(data)
        offset = 0
        ids = map(str, range(next_id, next_id + len(lengths)))
        for record_id, length in zip(ids, lengths, strict=True):
            record_ids.append(record_id)
            entries.append(
                {
                    "recordId": record_id,
                    "approximateArrivalTimestamp": arrival_ms,
                    "data": encode(view[offset : offset + length]),
                }
            )
            offset += length
    event["records"] = entries
    return event, record_ids


def answer_segments(
    shape: EventShape,
    invocation_id: str,
    segments: Sequence[Segment],
    call: Callable[[dict[str, Any]], tuple[Any, bytes]],
) -> list[SegmentAnswer]:
    """`answer_event` for segments, answered compactly: one invocation, where it runs. `call`
    gives the handler's return value and its JSON; a plain value (a dict of lists of dicts of
    JSON types, every record answered in order) is read as it is, anything else from its JSON."""
    event, record_ids = segment_event(shape, invocation_id, segments)
    result, body = call(event)
    _check_size(body)
    compact = _plain_answers(result, segments)
    if compact is not None:
        return compact
    answers = read_response(body, record_ids)
    compact = []
    position = 0
    for _, _, lengths, _ in segments:
        ok_lengths: list[int] = []
        ok_data: list[bytes] = []
        others: dict[int, Answer] = {}
        for index, answer in enumerate(answers[position : position + len(lengths)]):
            _compact(index, answer, ok_lengths, ok_data, others)
        position += len(lengths)
        compact.append((ok_lengths, b"".join(ok_data), others))
    return compact


def _plain_answers(result: Any, segments: Sequence[Segment]) -> list[SegmentAnswer] | None:
    """What `read_response` would answer, read from the handler's value without parsing its JSON
    again; None when the value is anything but the common case (see `answer_segments`), so the
    answers are the same either way."""
    if type(result) is not dict:
        return None
    entries = result.get("records")
    if type(entries) is not list or len(entries) != sum(len(s[2]) for s in segments):
        return None
    decode = pybase64.b64decode
    compact: list[SegmentAnswer] = []
    at = 0
    for first_id, _, lengths, _ in segments:
        ok_lengths: list[int] = []
        ok_data: list[bytes] = []
        others: dict[int, Answer] = {}
        for index, record_id in enumerate(map(str, range(first_id, first_id + len(lengths)))):
            entry = entries[at]
            at += 1
            if type(entry) is not dict or entry.get("recordId") != record_id:
                return None
            outcome = entry.get("result")
            if outcome == "Ok" and entry.get("metadata") is None:
                data = entry.get("data")
                if type(data) is not str:
                    return None
                try:
                    decoded = decode(data, validate=True)
                except (binascii.Error, ValueError):
                    return None
                ok_lengths.append(len(decoded))
                ok_data.append(decoded)
                continue
            if type(outcome) is not str or (outcome == "Ok" and not _plain_ok(entry)):
                return None
            _compact(index, _read_entry(entry), ok_lengths, ok_data, others)
        compact.append((ok_lengths, b"".join(ok_data), others))
    return compact


def _compact(
    index: int,
    answer: Answer,
    ok_lengths: list[int],
    ok_data: list[bytes],
    others: dict[int, Answer],
) -> None:
    """File record `index`'s answer in a SegmentAnswer's parts: a plain Ok by its data, any
    other answer (-1 in the lengths) as it is."""
    if answer.result == "Ok" and answer.partition_keys is None:
        ok_lengths.append(len(answer.data))
        ok_data.append(answer.data)
    else:
        ok_lengths.append(-1)
        others[index] = answer


def _plain_ok(entry: dict[str, Any]) -> bool:
    """An Ok entry with metadata whose every part `_read_entry` judges as its JSON would be."""
    metadata = entry.get("metadata")
    if type(metadata) is not dict or type(entry.get("data")) is not str:
        return False
    keys = metadata.get("partitionKeys")
    return keys is None or (type(keys) is dict and all(type(v) is str for v in keys.values()))
