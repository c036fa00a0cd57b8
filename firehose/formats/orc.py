"""ORC objects, written by Arrow's ORC writer with the OrcSerDe settings it has."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.orc as orc

from firehose.format_config import OrcSerDe

_CODECS = {"SNAPPY": "snappy", "ZLIB": "zlib", "NONE": "uncompressed", "ZSTD": "zstd"}


class OrcWriter:
    """Writes tables of one schema into one ORC file held in memory."""

    def __init__(self, schema: pa.Schema, options: OrcSerDe) -> None:
        self._sink = pa.BufferOutputStream()
        names = [name.lower() for name in schema.names]
        bloom = [names.index(c.lower()) for c in options.bloom_filter_columns or [] if c in names]
        self._writer = orc.ORCWriter(
            self._sink,
            file_version="0.11" if options.format_version == "V0_11" else "0.12",
            stripe_size=options.stripe_size_bytes,
            compression=_CODECS[options.compression],
            row_index_stride=options.row_index_stride,
            padding_tolerance=options.padding_tolerance,
            dictionary_key_size_threshold=options.dictionary_key_threshold,
            bloom_filter_columns=bloom or None,
            bloom_filter_fpp=options.bloom_filter_false_positive_probability,
        )

    def write(self, table: pa.Table) -> None:
        self._writer.write(table)

    def finish(self) -> pa.Buffer:
        self._writer.close()
        return self._sink.getvalue()
