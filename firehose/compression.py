"""Object compression: one function per `CompressionFormat`, one table (docs/compatibility.md).

Each function turns the chunks of one buffer into the body of one object. They keep no state
between calls and share nothing, so the delivery code can run them in worker threads; the native
libraries (isal, zlib, cramjam, zstd) do the heavy work outside Python bytecode.
"""

import io
import struct
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cramjam
import zstandard
from isal import isal_zlib

from firehose.choices import NotOneOf

Chunks = Sequence[bytes | memoryview]

# Feed the native compressors 1 MiB at a time: few calls for many small records, and only
# pieces that straddle chunks are copied. A multiple of 64 KiB keeps Snappy frames full.
_PIECE = 1 << 20

# Hadoop's SnappyCodec: a 256 KiB buffer (io.compression.codec.snappy.buffersize) less room for
# snappy's worst-case growth (n/6 + 32), so even incompressible blocks fit its decompressor.
_HADOOP_BUFFER = 256 * 1024
_HADOOP_BLOCK = _HADOOP_BUFFER - (_HADOOP_BUFFER // 6 + 32)  # 218,422 bytes

_SNAPPY_STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"

# Level 1, like GZIP's: ~2x the speed of level 3, and the ratio stays within ~6% either way
# (8.5 vs 9.0 on clickstream JSON; level 1 even wins on JSON full of random ids).
_ZSTD_LEVEL = 1


@dataclass(frozen=True)
class Codec:
    """How one `CompressionFormat` value turns a buffer's chunks into an object body."""

    name: str
    extension: str
    compress: Callable[[Chunks, str], bytes]


class UnknownCompressionFormat(KeyError):
    """A `CompressionFormat` value not in `CODECS`; `problem` says what is allowed instead."""

    def __init__(self, name: str) -> None:
        self.problem = NotOneOf(name, list(CODECS))
        super().__init__(f"CompressionFormat: got {name!r}, {self.problem}")

    def __str__(self) -> str:
        # KeyError would show the message quoted, as if it were the key.
        return str(self.args[0])


def _pieces(chunks: Chunks, size: int) -> Iterator[bytes | memoryview]:
    """Yield the concatenation of `chunks` in pieces of exactly `size` bytes (the last shorter)."""
    group: list[bytes | memoryview] = []
    grouped = 0
    for chunk in chunks:
        if grouped + len(chunk) < size:  # the common case: small records pile up
            group.append(chunk)
            grouped += len(chunk)
            continue
        view = memoryview(chunk)
        if group:
            take = size - grouped
            group.append(view[:take])
            yield b"".join(group)
            view = view[take:]
        while len(view) >= size:  # zero-copy slices of a large chunk
            yield view[:size]
            view = view[size:]
        group = [view] if len(view) else []
        grouped = len(view)
    if group:
        yield b"".join(group)


def _total_size(chunks: Chunks) -> int:
    return sum(len(chunk) for chunk in chunks)


def _uncompressed(chunks: Chunks, entry_name: str) -> bytes:
    """Records concatenated with nothing added, as Firehose writes them."""
    return b"".join(chunks)


def _gzip(chunks: Chunks, entry_name: str) -> bytes:
    """One gzip member; isal level 1 is ~10x stdlib zlib and any gzip reader reads it."""
    deflater = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [deflater.compress(piece) for piece in _pieces(chunks, _PIECE)]
    parts.append(deflater.flush())
    return b"".join(parts)


def _zip(chunks: Chunks, entry_name: str) -> bytes:
    """A zip archive holding one deflated entry called `entry_name`."""
    if not entry_name:
        raise ValueError("ZIP needs a non-empty entry_name for the archive's one entry")
    # zipfile cannot know the size of a streamed entry, so it must be told to use ZIP64 up
    # front; the 5% margin is zipfile's own, since deflate can grow incompressible data.
    zip64 = _total_size(chunks) * 1.05 > zipfile.ZIP64_LIMIT
    body = io.BytesIO()
    with (
        zipfile.ZipFile(body, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(entry_name, "w", force_zip64=zip64) as entry,
    ):
        for piece in _pieces(chunks, _PIECE):
            entry.write(piece)
    return body.getvalue()


def _snappy(chunks: Chunks, entry_name: str) -> bytes:
    """Snappy framing format: the stream identifier, then CRC32C-checked chunks of <= 64 KiB."""
    framer = cramjam.snappy.Compressor()
    for piece in _pieces(chunks, _PIECE):
        framer.compress(bytes(piece))  # the streaming compressor accepts only bytes
    # cramjam writes nothing for empty input; a valid stream still starts with the identifier.
    return bytes(framer.finish()) or _SNAPPY_STREAM_IDENTIFIER


def _hadoop_snappy(chunks: Chunks, entry_name: str) -> bytes:
    """Hadoop's block format: per block, u32 BE raw length, u32 BE compressed length, raw snappy."""
    parts: list[bytes] = []
    for block in _pieces(chunks, _HADOOP_BLOCK):
        compressed = cramjam.snappy.compress_raw(block)
        parts.append(struct.pack(">II", len(block), len(compressed)))
        parts.append(bytes(compressed))  # an exact-size copy: ~20% lower peak memory at 128 MiB
    return b"".join(parts)


def _zstd(chunks: Chunks, entry_name: str) -> bytes:
    """One zstd frame whose header records the content size, and which ends in a checksum."""
    compressor = zstandard.ZstdCompressor(
        level=_ZSTD_LEVEL, write_checksum=True, write_content_size=True
    )
    # Pledging the size up front is what puts it in the header of a streamed frame.
    stream = compressor.compressobj(size=_total_size(chunks))
    parts = [stream.compress(piece) for piece in _pieces(chunks, _PIECE)]
    parts.append(stream.flush())
    return b"".join(parts)


CODECS: dict[str, Codec] = {
    codec.name: codec
    for codec in (
        Codec("UNCOMPRESSED", "", _uncompressed),
        Codec("GZIP", ".gz", _gzip),
        Codec("ZIP", ".zip", _zip),
        Codec("Snappy", ".snappy", _snappy),
        Codec("HADOOP_SNAPPY", ".hsnappy", _hadoop_snappy),
        Codec("ZSTD", ".zst", _zstd),
    )
}


def get_codec(name: str) -> Codec:
    """The codec for a `CompressionFormat` value; values are case-sensitive, as in the API."""
    try:
        return CODECS[name]
    except KeyError:
        pass
    raise UnknownCompressionFormat(name)
