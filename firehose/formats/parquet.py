"""Parquet objects: row groups gathered from several slices' tables, timestamps as INT96 as Hive
writes them (the form Athena, Hive and Spark read without settings)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from firehose.format_config import ParquetSerDe

_CODECS = {"SNAPPY": "snappy", "GZIP": "gzip", "UNCOMPRESSED": "none", "ZSTD": "zstd"}
# The most Arrow data held for the row group being gathered. pyarrow writes each table it is
# given as row groups of its own, so a row group's rows wait as tables until it is written. Each
# row group builds its dictionaries afresh: a 128 MiB buffer in eight row groups cost the writer
# about 0.3 µs a record more than in one, in four about 0.1 more. BlockSizeBytes, at least
# 64 MiB, bounds it too.
ROW_GROUP_HELD_BYTES = 32 * 1024 * 1024


class ParquetWriter:
    """Writes tables of one schema into one Parquet file held in memory."""

    def __init__(self, schema: pa.Schema, options: ParquetSerDe) -> None:
        self._sink = pa.BufferOutputStream()
        v2 = options.writer_version_format == "V2"
        self._writer = pq.ParquetWriter(
            self._sink,
            schema,
            compression=_CODECS[options.compression],
            version="2.6" if v2 else "1.0",
            data_page_version="2.0" if v2 else "1.0",
            data_page_size=options.page_size_bytes,
            use_dictionary=options.enable_dictionary_compression,
            use_deprecated_int96_timestamps=True,
        )
        self._limit = min(ROW_GROUP_HELD_BYTES, options.block_size_bytes)
        self._held: list[pa.Table] = []
        self._held_bytes = 0

    def write(self, table: pa.Table) -> None:
        self._held.append(table)
        self._held_bytes += table.nbytes
        if self._held_bytes >= self._limit:
            self._write_held()

    def finish(self) -> pa.Buffer:
        self._write_held()
        self._writer.close()
        return self._sink.getvalue()

    def _write_held(self) -> None:
        """The tables held, as one row group."""
        if not self._held:
            return
        rows = pa.concat_tables(self._held)
        self._held, self._held_bytes = [], 0
        self._writer.write_table(rows, row_group_size=max(1, rows.num_rows))
