"""Parquet objects: one row group per table written, timestamps as INT96 as Hive writes them
(the form Athena, Hive and Spark read without settings)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from firehose.format_config import ParquetSerDe

_CODECS = {"SNAPPY": "snappy", "GZIP": "gzip", "UNCOMPRESSED": "none", "ZSTD": "zstd"}


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

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))

    def finish(self) -> pa.Buffer:
        self._writer.close()
        return self._sink.getvalue()
