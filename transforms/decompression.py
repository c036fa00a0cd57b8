"""`Decompression`: gunzips each record, as CloudWatch Logs subscriptions deliver gzip'd records.

A record that is not gzip goes to the error output as `decompression-failed` with the error code
`Decompression.InvalidFormat` and its compressed bytes as the data.
"""

from __future__ import annotations

from typing import cast

from isal import isal_zlib

from firehose.processing_config import ProcessorConfig
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import failure

OUTPUT_TYPE = "decompression-failed"
INVALID_FORMAT = "Decompression.InvalidFormat"

_GZIP = 16 + isal_zlib.MAX_WBITS  # wbits for a gzip header and trailer around the deflate data
_MAGIC = b"\x1f\x8b"
_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)  # its stub types it as an instance


def gunzip(data: bytes | memoryview) -> bytes:
    """Every member of a gzip file, joined; zero padding after the last is ignored, as by gzip."""
    parts: list[bytes] = []
    rest: bytes | memoryview = data
    while True:
        if rest[:2] != _MAGIC:
            where = "after the last gzip member" if parts else "at the start"
            raise ValueError(f"no gzip magic bytes (1f 8b) {where}")
        member = isal_zlib.decompressobj(_GZIP)
        parts.append(member.decompress(rest))
        if not member.eof:
            raise EOFError("the gzip data ends in the middle of a member")
        rest = member.unused_data
        if not rest.strip(b"\0"):
            return b"".join(parts)


class Decompression:
    type = "Decompression"

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        for record in records:
            try:
                data = gunzip(record.data)
            except (ValueError, EOFError, _ISAL_ERROR) as exc:
                output.failed.append(
                    failure(record, OUTPUT_TYPE, INVALID_FORMAT, f"the record is not gzip: {exc}")
                )
                continue
            record.data = data
            output.records.append(record)
        return output

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig, context: ProcessingContext) -> Decompression:
    # CompressionFormat has one value, GZIP, checked by the config.
    return Decompression()
