"""Every CompressionFormat read back by the standard tool and by a Python reader."""

import os
import random
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cramjam
import pytest
import zstandard

from firehose.compression import CODECS, Codec, UnknownCompressionFormat, get_codec
from tests.readers import (
    HADOOP_BUFFER,
    read_gzip,
    read_hadoop_snappy,
    read_snappy,
    read_zip,
    read_zstd,
)

ENTRY = "clicks-1-2024-06-01-00-00-00-0a1b2c"


def json_lines(total: int, seed: int = 1) -> bytes:
    """Roughly 250-byte JSON records, like a clickstream: compressible but not trivially."""
    rng = random.Random(seed)
    lines = []
    size = 0
    while size < total:
        line = (
            f'{{"event_id":"{rng.getrandbits(64):016x}","ts":{1717200000000 + size},'
            f'"user_id":{rng.randrange(10**6)},"page":"/products/{rng.randrange(500)}/view",'
            f'"referrer":"https://www.example.com/search?q={rng.randrange(10**4)}",'
            f'"ua":"Mozilla/5.0 (X11; Linux x86_64)","price":{rng.uniform(1, 500):.2f},'
            f'"country":"{rng.choice(["US", "DE", "BR", "IN", "JP"])}","ok":true}}\n'
        ).encode()
        lines.append(line)
        size += len(line)
    return b"".join(lines)


def split(data: bytes, sizes: list[int]) -> list[bytes | memoryview]:
    """Cut `data` into memoryview slices of the given sizes, then bytes for the rest."""
    view = memoryview(data)
    chunks: list[bytes | memoryview] = []
    at = 0
    for size in sizes:
        chunks.append(view[at : at + size])
        at += size
    chunks.append(bytes(view[at:]))
    return chunks


def payloads() -> dict[str, list[bytes | memoryview]]:
    """Chunk layouts a buffer can hand over: nothing, one record, many small, large slices."""
    lines = json_lines(3 * 2**20)
    records = lines.splitlines(keepends=True)
    return {
        "empty": [],
        "empty-chunks": [b"", memoryview(b"")],
        "one-record": [records[0]],
        "records": [*records[:3000]],
        # slices straddling the 1 MiB feed size, an empty slice, then a bytes tail
        "mixed-slices": split(lines, [10, 0, 1_500_000, 700_000, 3]),
    }


PAYLOADS = payloads()


def joined(chunks: list[bytes | memoryview]) -> bytes:
    return b"".join(chunks)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} must be installed: it is the reader users will use")
    return path


PYTHON_READERS: dict[str, Callable[[bytes], bytes]] = {
    "UNCOMPRESSED": bytes,
    "GZIP": read_gzip,
    "ZIP": lambda body: read_zip(body, ENTRY),
    "Snappy": read_snappy,
    "HADOOP_SNAPPY": lambda body: read_hadoop_snappy(body)[0],
    "ZSTD": read_zstd,
}


def test_extensions_are_firehoses_and_zst_for_zstd() -> None:
    assert {name: codec.extension for name, codec in CODECS.items()} == {
        "UNCOMPRESSED": "",
        "GZIP": ".gz",
        "ZIP": ".zip",
        "Snappy": ".snappy",
        "HADOOP_SNAPPY": ".hsnappy",
        "ZSTD": ".zst",
    }
    assert all(codec.name == name for name, codec in CODECS.items())


def test_get_codec_returns_the_table_entry() -> None:
    assert get_codec("GZIP") is CODECS["GZIP"]
    assert isinstance(get_codec("Snappy"), Codec)


def test_get_codec_rejects_unknown_names_listing_the_allowed_ones() -> None:
    with pytest.raises(KeyError) as caught:
        get_codec("BROTLI")
    assert isinstance(caught.value, UnknownCompressionFormat)
    message = str(caught.value)
    assert "'BROTLI'" in message
    assert all(name in message for name in CODECS)


def test_get_codec_is_case_sensitive_but_suggests_the_spelling() -> None:
    with pytest.raises(UnknownCompressionFormat, match=r"exactly so: did you mean Snappy\?"):
        get_codec("SNAPPY")


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("name", CODECS)
def test_python_readers_get_the_concatenation_back(name: str, payload: str) -> None:
    chunks = PAYLOADS[payload]
    body = CODECS[name].compress(chunks, ENTRY)
    assert isinstance(body, bytes)
    assert PYTHON_READERS[name](body) == joined(chunks)


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("GZIP", ["gzip", "-d", "-c"]),
        ("ZIP", ["unzip", "-p"]),
        ("ZSTD", ["zstd", "-d", "-c"]),
    ],
)
@pytest.mark.parametrize("payload", ["empty", "records", "mixed-slices"])
def test_standard_tools_read_the_object(
    name: str, command: list[str], payload: str, tmp_path: Path
) -> None:
    need_tool(command[0])
    chunks = PAYLOADS[payload]
    path = tmp_path / f"object{CODECS[name].extension}"
    path.write_bytes(CODECS[name].compress(chunks, ENTRY))
    result = subprocess.run([*command, str(path)], capture_output=True, check=True, timeout=60)
    assert result.stdout == joined(chunks)


def test_unzip_lists_the_one_entry(tmp_path: Path) -> None:
    need_tool("unzip")
    path = tmp_path / "object.zip"
    path.write_bytes(CODECS["ZIP"].compress(PAYLOADS["records"], ENTRY))
    listing = subprocess.run(["unzip", "-Z1", str(path)], capture_output=True, check=True).stdout
    assert listing.decode().splitlines() == [ENTRY]


def test_zip_needs_an_entry_name() -> None:
    with pytest.raises(ValueError, match="entry_name"):
        CODECS["ZIP"].compress([b"x"], "")


def test_zip_switches_to_zip64_when_the_entry_is_large(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real 2 GiB entry is too slow for a unit test; lower zipfile's limit instead.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 10_000)
    data = json_lines(50_000)
    body = CODECS["ZIP"].compress([data], ENTRY)
    sizes = struct.unpack_from("<II", body, 18)  # the local header's compressed, raw sizes
    assert sizes == (0xFFFFFFFF, 0xFFFFFFFF), "sizes moved to the ZIP64 extra field"
    assert read_zip(body) == data
    monkeypatch.undo()
    path = tmp_path / "object.zip"
    path.write_bytes(body)
    unzipped = subprocess.run(
        [need_tool("unzip"), "-p", str(path)], capture_output=True, check=True
    )
    assert unzipped.stdout == data


def test_snappy_is_one_framed_stream_of_compressed_chunks() -> None:
    data = json_lines(300_000)
    body = CODECS["Snappy"].compress(split(data, [100_000, 5]), ENTRY)
    chunk_types = []
    at = 0
    while at < len(body):
        length = int.from_bytes(body[at + 1 : at + 4], "little")
        chunk_types.append(body[at])
        at += 4 + length
    assert at == len(body)
    assert chunk_types[0] == 0xFF and 0xFF not in chunk_types[1:], "one stream identifier"
    assert set(chunk_types[1:]) == {0x00}, "JSON compresses, so every chunk is a compressed one"
    assert bytes(cramjam.snappy.decompress(body)) == data


def test_empty_snappy_is_just_the_stream_identifier() -> None:
    assert CODECS["Snappy"].compress([], ENTRY) == b"\xff\x06\x00\x00sNaPpY"


@pytest.mark.parametrize("kind", ["json", "incompressible"])
def test_hadoop_snappy_blocks_fit_hadoops_buffers(kind: str) -> None:
    data = json_lines(1_000_000) if kind == "json" else os.urandom(1_000_000)
    body = CODECS["HADOOP_SNAPPY"].compress(split(data, [1000, 300_000, 7]), ENTRY)
    decoded, sizes = read_hadoop_snappy(body)
    assert decoded == data
    assert len(sizes) > 1
    assert all(size == sizes[0] for size in sizes[:-1]), "every block but the last is full"
    assert sizes[0] <= HADOOP_BUFFER - (HADOOP_BUFFER // 6 + 32)


def test_hadoop_snappy_of_nothing_is_empty() -> None:
    assert CODECS["HADOOP_SNAPPY"].compress([], ENTRY) == b""


def test_zstd_records_content_size_even_when_empty() -> None:
    body = CODECS["ZSTD"].compress([], ENTRY)
    frame = zstandard.get_frame_parameters(body)
    assert frame.content_size == 0 and frame.has_checksum


def test_codecs_give_the_same_bytes_from_many_threads() -> None:
    chunks = PAYLOADS["mixed-slices"]
    deterministic = [name for name in CODECS if name != "ZIP"]  # zip entries carry a timestamp
    expected = {name: CODECS[name].compress(chunks, ENTRY) for name in deterministic}
    jobs = [name for name in CODECS for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(lambda name: CODECS[name].compress(chunks, ENTRY), jobs))
    for name, body in zip(jobs, bodies, strict=True):
        assert PYTHON_READERS[name](body) == joined(chunks)
        if name in expected:
            assert body == expected[name]
