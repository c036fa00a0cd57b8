"""`RecordDeAggregation`: splits records that hold several records (JSON objects one after the
other, or pieces between delimiters) into one record each, so each can be partitioned alone.

Records that cannot be split go to the error output as `processing-failed`, with the error code
`RecordDeAggregation.InvalidJson` (not JSON objects one after the other, such as a top-level
array) or `RecordDeAggregation.TooManySubRecords` (more than 500 sub-records).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from firehose.processing_config import ProcessorConfig
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import MAX_SUB_RECORDS, SubSeqs, failure, split

OUTPUT_TYPE = "processing-failed"
INVALID_JSON = "RecordDeAggregation.InvalidJson"
TOO_MANY_SUB_RECORDS = "RecordDeAggregation.TooManySubRecords"

_WHITESPACE = b" \t\r\n"  # JSON's whitespace; bytes.strip() would also take \v and \f
# Between two objects: `}`, optional whitespace, `{`. Outside strings that is always a boundary.
_BETWEEN_OBJECTS = re.compile(rb"\}[ \t\r\n]*\{")
# What the scanner stops at: a whole string (so braces inside it are skipped) or a bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]', re.DOTALL)
_OPEN = frozenset(b"{[")


class NotJsonObjects(ValueError):
    """A record that is not a run of JSON objects; the message says where it goes wrong."""


def _parse(piece: bytes) -> Any:
    try:
        return orjson.loads(piece)
    except orjson.JSONDecodeError:
        # orjson refuses some valid JSON (integers past 64 bits): ask the standard parser.
        return json.loads(piece, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_object(piece: bytes, position: int) -> None:
    try:
        value = _parse(piece)
    except (ValueError, RecursionError) as exc:
        raise NotJsonObjects(f"JSON value {position + 1} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else "not an object"
        raise NotJsonObjects(
            f"JSON value {position + 1} is {kind}; sub-records must be JSON objects"
        )


def _boundaries(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the pieces between `}` and `{` (whitespace between allowed): one regex
    pass, no per-byte loop."""
    spans = []
    start = 0
    for match in _BETWEEN_OBJECTS.finditer(data):
        spans.append((start, match.start() + 1))
        start = match.end() - 1
    spans.append((start, len(data)))
    return spans


def _scan(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level value, found by bracket depth; strings are skipped whole,
    so this loops per string and bracket, not per byte. Only for records `_boundaries` misreads
    (a string holding `}{`) and to say what is wrong with a record."""
    spans = []
    depth = 0
    start = end = 0
    for match in _TOKENS.finditer(data):
        at = match.start()
        token = data[at]
        if token == 0x22:  # a string
            if depth == 0:
                raise NotJsonObjects(f"a string at the top level at byte {at}")
            continue
        if token in _OPEN:
            if depth == 0:
                if data[end:at].strip(_WHITESPACE):
                    raise NotJsonObjects(f"bytes that are not JSON before byte {at}")
                start = at
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                spans.append((start, at + 1))
                end = at + 1
            elif depth < 0:
                raise NotJsonObjects(f"a closing bracket with nothing open at byte {at}")
    if depth or data[end:].strip(_WHITESPACE):
        raise NotJsonObjects("the record ends inside a JSON value or with bytes that are not JSON")
    if not spans:
        raise NotJsonObjects("the record holds no JSON object")
    return spans


def _all_objects(pieces: list[bytes]) -> bool:
    """Whether every piece is a JSON object (orjson only: the quick check of the fast paths)."""
    try:
        for piece in pieces:
            if type(orjson.loads(piece)) is not dict:
                return False
    except orjson.JSONDecodeError:
        return False
    return bool(pieces)


def split_json(data: bytes | memoryview) -> list[bytes]:
    """The JSON objects of `data`, each as its own bytes (no re-serialisation).

    Boundaries are found by C code where possible: newlines first (the common case), then
    `}{` with optional whitespace between; only records neither reads are scanned token by token.
    """
    data = bytes(data)
    lines = [line.strip(_WHITESPACE) for line in data.split(b"\n")]
    pieces = [line for line in lines if line]
    if _all_objects(pieces):
        return pieces
    pieces = [data[start:end].strip(_WHITESPACE) for start, end in _boundaries(data)]
    if _all_objects(pieces):
        return pieces
    # A `}{` inside a string made a false boundary, or the record is not valid JSON objects:
    # scan, which also says what is wrong.
    pieces = [data[start:end] for start, end in _scan(data)]
    for position, piece in enumerate(pieces):
        _check_object(piece, position)
    return pieces


def split_delimited(data: bytes | memoryview, delimiter: bytes) -> list[bytes]:
    """The pieces between delimiters; a delimiter at the very end ends the last piece rather
    than starting an empty one."""
    pieces = bytes(data).split(delimiter)
    if len(pieces) > 1 and not pieces[-1]:
        pieces.pop()
    return pieces


class RecordDeAggregation:
    type = "RecordDeAggregation"

    def __init__(self, sub_record_type: str, delimiter: bytes | None = None) -> None:
        if sub_record_type == "DELIMITED" and not delimiter:
            raise ValueError("SubRecordType DELIMITED needs a Delimiter")
        self.sub_record_type = sub_record_type
        self.delimiter = delimiter

    def _split(self, data: bytes | memoryview) -> list[bytes]:
        if self.delimiter is not None and self.sub_record_type == "DELIMITED":
            return split_delimited(data, self.delimiter)
        return split_json(data)

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        sub_seqs = SubSeqs()
        for record in records:
            try:
                pieces = self._split(record.data)
            except NotJsonObjects as exc:
                output.failed.append(failure(record, OUTPUT_TYPE, INVALID_JSON, str(exc)))
                continue
            if len(pieces) > MAX_SUB_RECORDS:
                message = (
                    f"the record holds {len(pieces)} sub-records; "
                    f"at most {MAX_SUB_RECORDS} are allowed"
                )
                output.failed.append(failure(record, OUTPUT_TYPE, TOO_MANY_SUB_RECORDS, message))
                continue
            first = sub_seqs.take(record.seq, len(pieces))
            output.records.extend(
                split(record, piece, first + index) for index, piece in enumerate(pieces)
            )
        return output

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig, context: ProcessingContext) -> RecordDeAggregation:
    values = config.values()
    return RecordDeAggregation(values["SubRecordType"], values["Delimiter"])
