"""KPL de-aggregation: a Kinesis record packed by the Kinesis Producer Library holds many user
records; Firehose reading a Kinesis stream unpacks them before any other processor.

Not a `ProcessingConfiguration` type: a Kinesis source puts this step first itself. The format
(magic bytes, a protobuf `AggregatedRecord`, the MD5 of the protobuf) is read here directly: it
needs only varints and length-delimited fields. A record that is not such an aggregate (no
magic, wrong MD5, a protobuf that does not parse) passes through unchanged, as in the KCL.
"""

from __future__ import annotations

import dataclasses
import hashlib

from firehose.processing_config import ProcessorConfig
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import SubSeqs, split

TYPE = "KplDeaggregation"
MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST = 16  # MD5

# Protobuf wire types.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class NotAggregated(ValueError):
    """The bytes are not a KPL aggregated record."""


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    """The varint at `at`, and where the next field starts."""
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise NotAggregated("a varint runs off the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(data: memoryview) -> list[tuple[int, int | memoryview]]:
    """(field number, value) of each field of one message: an int, or a view of the bytes."""
    fields: list[tuple[int, int | memoryview]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _varint(data, at)
            fields.append((number, value))
        elif wire == _LENGTH:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise NotAggregated("a field runs off the end")
            fields.append((number, data[at : at + length]))
            at += length
        elif wire in (_FIXED64, _FIXED32):
            at += 8 if wire == _FIXED64 else 4
        else:
            raise NotAggregated(f"wire type {wire} is not one of protobuf's")
    if at != len(data):
        raise NotAggregated("a field runs off the end")
    return fields


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise NotAggregated("a string field holds a varint")
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise NotAggregated("a partition key is not UTF-8") from None


def deaggregate(data: bytes | memoryview) -> list[tuple[str, memoryview]] | None:
    """(partition key, data) of each user record of a KPL aggregate; None when `data` is not
    one. The data are views into `data`, not copies."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _DIGEST or view[: len(MAGIC)] != MAGIC:
        return None
    body = view[len(MAGIC) : -_DIGEST]
    if hashlib.md5(body).digest() != view[-_DIGEST:]:
        return None
    try:
        return _records(body)
    except NotAggregated:
        return None


def _records(body: memoryview) -> list[tuple[str, memoryview]]:
    partition_keys: list[str] = []
    inner: list[memoryview] = []
    for number, value in _fields(body):
        if number == 1:  # partition_key_table
            partition_keys.append(_text(value))
        elif number == 3:  # records
            if isinstance(value, int):
                raise NotAggregated("a record field holds a varint")
            inner.append(value)
        # 2, explicit_hash_key_table, only chose shards.
    records = []
    for message in inner:
        key_index: int | None = None
        payload: memoryview | None = None
        for number, value in _fields(message):
            if number == 1 and isinstance(value, int):  # partition_key_index
                key_index = value
            elif number == 3 and not isinstance(value, int):  # data
                payload = value
        if key_index is None or payload is None or key_index >= len(partition_keys):
            raise NotAggregated("a record lacks its partition key index or data")
        records.append((partition_keys[key_index], payload))
    return records


class KplDeaggregation:
    type = TYPE

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        sub_seqs = SubSeqs()
        for record in records:
            inner = deaggregate(record.data)
            if inner is None:
                output.records.append(record)
                continue
            first = sub_seqs.take(record.seq, len(inner))
            for index, (partition_key, data) in enumerate(inner):
                user_record = split(record, data, first + index)
                if record.kinesis is not None:
                    user_record.kinesis = dataclasses.replace(
                        record.kinesis, partition_key=partition_key, sub_sequence_number=index
                    )
                output.records.append(user_record)
        return output

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig | None, context: ProcessingContext) -> KplDeaggregation:
    """Takes no parameters; `config` may be None, as no config names this step."""
    return KplDeaggregation()
