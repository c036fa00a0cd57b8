"""The envelope a Kinesis record travels in through the write-ahead log.

The log stores bare bytes per record; a Kinesis-sourced stream needs each record's shard,
partition key, sequence number and arrival time later (Lambda's `kinesisRecordMetadata`), so
the reader wraps the data in a small versioned header and the stage unwraps it first.

Layout (big-endian): magic `FHK` + version 1, u16 length + shard id, u16 length + partition
key (UTF-8), u16 length + sequence number (ASCII digits), u64 approximate arrival (epoch ms),
then the record's data to the end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"FHK\x01"
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


class NotAnEnvelope(ValueError):
    """The bytes were not written by `wrap` (a log from another stream type, a bug)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    shard_id: str
    partition_key: str
    sequence_number: str
    arrival_ms: int
    data: memoryview


def wrap(
    shard_id: str, partition_key: str, sequence_number: str, arrival_ms: int, data: bytes
) -> bytes:
    parts = [MAGIC]
    for text in (shard_id.encode(), partition_key.encode(), sequence_number.encode()):
        parts += [_U16.pack(len(text)), text]
    parts += [_U64.pack(arrival_ms), data]
    return b"".join(parts)


def unwrap(record: bytes | memoryview) -> Envelope:
    view = memoryview(record)
    if view[: len(MAGIC)] != MAGIC:
        raise NotAnEnvelope("no Kinesis envelope header")
    at = len(MAGIC)
    texts: list[str] = []
    try:
        for _ in range(3):
            (length,) = _U16.unpack_from(view, at)
            at += _U16.size
            if at + length > len(view):
                raise NotAnEnvelope("a header field runs off the end")
            texts.append(str(view[at : at + length], "utf-8"))
            at += length
        (arrival_ms,) = _U64.unpack_from(view, at)
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotAnEnvelope(f"a damaged envelope header: {exc}") from None
    shard_id, partition_key, sequence_number = texts
    return Envelope(shard_id, partition_key, sequence_number, arrival_ms, view[at + _U64.size :])
