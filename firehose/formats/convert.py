"""The one interface the S3 destination calls: a batch's records in, an object body and the
records that failed out.

A batch is converted a slice at a time (`SLICE_BYTES` of JSON): each slice's Arrow table goes
to the writer (ORC stripes and Avro blocks at once; Parquet gathers up to 32 MiB of tables into
a row group) before the next is read, so a 128 MiB buffer never needs its whole table in memory
beside its bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from firehose.format_config import DataFormatConversionConfiguration
from firehose.formats.avro import AvroWriter
from firehose.formats.joda import compile_format
from firehose.formats.json_arrow import JsonToArrow, RecordFailure, Scratch, Segment
from firehose.formats.orc import OrcWriter
from firehose.formats.parquet import ParquetWriter
from firehose.formats.schema import Columns
from firehose.formats.values import JsonRules

SLICE_BYTES = 16 * 1024 * 1024


class Writer(Protocol):
    def write(self, table: pa.Table) -> None: ...

    def finish(self) -> pa.Buffer | bytes: ...


@dataclass
class Converted:
    """The object body (None when no record converted) and the records that failed."""

    body: pa.Buffer | bytes | None
    failures: list[RecordFailure]
    rows: int


def rules_of(config: DataFormatConversionConfiguration) -> JsonRules:
    """The deserializer section as the readers' rules."""
    openx = config.deserializer.open_x_json_ser_de
    if openx is not None:
        mappings = openx.column_to_json_key_mappings or {}
        return JsonRules(
            openx=True,
            case_insensitive=openx.case_insensitive,
            dots_to_underscores=openx.convert_dots_in_json_keys_to_underscores,
            column_keys={column.lower(): key for column, key in mappings.items()},
        )
    hive = config.deserializer.hive_json_ser_de
    assert hive is not None
    formats = tuple(compile_format(pattern) for pattern in hive.timestamp_formats or [])
    return JsonRules(openx=False, timestamp_formats=formats)


class RecordConverter:
    """JSON records into one object of the configured format; safe to call from any thread,
    one batch per call."""

    def __init__(self, config: DataFormatConversionConfiguration, columns: Columns) -> None:
        self.config = config
        self.columns = columns
        self.reader = JsonToArrow(columns, rules_of(config))

    def _writer(self) -> Writer:
        serializer = self.config.serializer
        schema = self.reader.schema
        if serializer.parquet_ser_de is not None:
            return ParquetWriter(schema, serializer.parquet_ser_de)
        if serializer.orc_ser_de is not None:
            return OrcWriter(schema, serializer.orc_ser_de)
        assert serializer.avro_ser_de is not None
        return AvroWriter(self.columns, serializer.avro_ser_de)

    def convert(self, segments: Sequence[Segment]) -> Converted:
        """`segments`: records back to back with their lengths (a batch's runs)."""
        writer = self._writer()
        failures: list[RecordFailure] = []
        rows = 0
        first = 0
        scratch = Scratch()
        for piece in _slices(segments, SLICE_BYTES):
            table, failed = self.reader.read(piece, first, scratch)
            first += sum(len(lengths) for _, lengths in piece)
            failures += failed
            if table.num_rows:
                writer.write(table)
                rows += table.num_rows
            del table
            # Arrow's allocator keeps the pages it freed for reuse; handing them back after each
            # slice keeps a conversion's memory at about one slice's, not a batch's.
            pa.default_memory_pool().release_unused()
        body = writer.finish()
        return Converted(body if rows else None, failures, rows)


def _slices(segments: Sequence[Segment], size: int) -> Iterator[list[Segment]]:
    """Segments regrouped into slices of about `size` bytes, whole records each."""
    current: list[Segment] = []
    held = 0
    for data, lengths in segments:
        if held + len(data) < size:  # the whole segment fits: no need to walk its records
            current.append((data, lengths))
            held += len(data)
            continue
        start = begin = offset = 0
        for index, length in enumerate(lengths):
            offset += length
            if held + offset - begin >= size:
                current.append((data[begin:offset], lengths[start : index + 1]))
                yield current
                current, held, start, begin = [], 0, index + 1, offset
        if start < len(lengths):
            current.append((data[begin:offset], lengths[start:]))
            held += offset - begin
    if current:
        yield current
