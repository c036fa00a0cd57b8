"""Strict Python readers of every CompressionFormat: each checks the framing, not only the bytes."""

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import cramjam
import zstandard

HADOOP_BUFFER = 256 * 1024  # Hadoop's SnappyDecompressor holds one compressed block in this


def read_hadoop_snappy(body: bytes) -> tuple[bytes, list[int]]:
    """Decode Hadoop's block format as BlockDecompressorStream does; also give block sizes."""
    out = bytearray()
    sizes = []
    at = 0
    while at < len(body):
        raw_len, compressed_len = struct.unpack_from(">II", body, at)
        at += 8
        assert compressed_len <= HADOOP_BUFFER, "a block Hadoop's decompressor cannot hold"
        block = bytes(cramjam.snappy.decompress_raw(body[at : at + compressed_len]))
        at += compressed_len
        assert len(block) == raw_len
        sizes.append(raw_len)
        out += block
    assert at == len(body)
    return bytes(out), sizes


def read_gzip(body: bytes) -> bytes:
    reader = zlib.decompressobj(31)
    data = reader.decompress(body)
    assert reader.eof and reader.unused_data == b"", "exactly one gzip member"
    assert gzip.decompress(body) == data
    return data


def read_zip(body: bytes, entry: str | None = None) -> bytes:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        [info] = archive.infolist()
        assert entry is None or info.filename == entry
        assert info.compress_type == zipfile.ZIP_DEFLATED
        return archive.read(info)


def read_snappy(body: bytes) -> bytes:
    assert body.startswith(b"\xff\x06\x00\x00sNaPpY")
    return bytes(cramjam.snappy.decompress(body))


def read_zstd(body: bytes) -> bytes:
    frame = zstandard.get_frame_parameters(body)
    assert frame.has_checksum
    reader = zstandard.ZstdDecompressor().decompressobj()
    data = reader.decompress(body)
    assert reader.eof and reader.unused_data == b"", "exactly one zstd frame"
    assert frame.content_size == len(data), "content size belongs in the frame header"
    return data


READERS: dict[str, Callable[[bytes], bytes]] = {
    "UNCOMPRESSED": bytes,
    "GZIP": read_gzip,
    "ZIP": read_zip,
    "Snappy": read_snappy,
    "HADOOP_SNAPPY": lambda body: read_hadoop_snappy(body)[0],
    "ZSTD": read_zstd,
}
