"""Connection limits and malformed requests, over raw sockets against a real listening server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from firehose.api import FirehoseApi
from firehose.http_server import MIB, HttpLimits
from tests.factories import memory_stream
from tests.memory_destination import MemoryDestination
from tests.test_api import FakeService

TARGET = "X-Amz-Target: Firehose_20150804.PutRecord\r\n"
FAST = HttpLimits(keepalive_timeout=30, header_timeout=30, body_timeout=30)

Serve = Callable[[HttpLimits], Awaitable[tuple[int, MemoryDestination]]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Starts the API the way the service does (its runner on a TCP site) on a free port."""
    runners: list[web.AppRunner] = []
    streams = []

    async def start(limits: HttpLimits) -> tuple[int, MemoryDestination]:
        stream, destination = memory_stream(tmp_path / str(len(runners)), name="events")
        await stream.open()
        streams.append(stream)
        runner = FirehoseApi(FakeService(streams={"events": stream}), limits).runner()
        runners.append(runner)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port: int = runner.addresses[0][1]
        return port, destination

    yield start
    for runner in runners:
        await runner.cleanup()
    for stream in streams:
        await stream.close(timeout=1)


def put_record(data: bytes) -> bytes:
    record = {"DeliveryStreamName": "events", "Record": {"Data": base64.b64encode(data).decode()}}
    return orjson.dumps(record)


def head(length: int, *extra: str) -> bytes:
    lines = ["POST / HTTP/1.1", "Host: test", TARGET.strip(), f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (from now)."""
    began = time.monotonic()
    data = await asyncio.wait_for(reader.read(), seconds)
    return data, time.monotonic() - began


def answer(data: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of one HTTP answer."""
    head_part, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, orjson.loads(body) if body else None


def assert_firehose_error(data: bytes, status: int, code: str) -> dict[str, Any]:
    got_status, headers, body = answer(data)
    assert (got_status, body["__type"]) == (status, code), data
    assert headers["content-type"].startswith("application/x-amz-json-1.1")
    assert set(body) == {"__type", "message"}
    return dict(body)


async def test_an_idle_keepalive_connection_is_closed_after_its_timeout(serve: Serve) -> None:
    port, _ = await serve(HttpLimits(keepalive_timeout=0.5, header_timeout=30, body_timeout=30))
    reader, writer = await connect(port)
    writer.write(head(len(body := put_record(b"x"))) + body)
    status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 200")
    _, after = await closed_within(reader, 5)
    assert after < 3
    writer.close()


async def test_a_connection_that_never_sends_a_byte_is_closed(serve: Serve) -> None:
    port, _ = await serve(HttpLimits(keepalive_timeout=0.5, header_timeout=30, body_timeout=30))
    reader, writer = await connect(port)
    data, after = await closed_within(reader, 5)
    assert data == b"" and after < 3
    writer.close()


async def test_request_headers_sent_too_slowly_close_the_connection(serve: Serve) -> None:
    port, _ = await serve(HttpLimits(keepalive_timeout=30, header_timeout=0.5, body_timeout=30))
    reader, writer = await connect(port)
    writer.write(b"POST / HTTP/1.1\r\nHost: test\r\n")  # and never the blank line
    began = time.monotonic()
    for _ in range(4):  # trickling more header bytes does not extend the deadline
        await asyncio.sleep(0.2)
        if not reader.at_eof():
            writer.write(b"X-Slow: 1\r\n")
    data, _ = await closed_within(reader, 5)
    assert data == b""
    assert time.monotonic() - began < 3
    writer.close()


async def test_a_body_sent_too_slowly_is_answered_408_and_closed(serve: Serve) -> None:
    port, destination = await serve(
        HttpLimits(keepalive_timeout=30, header_timeout=30, body_timeout=0.5)
    )
    body = put_record(b"slow")
    reader, writer = await connect(port)
    writer.write(head(len(body)) + body[: len(body) // 2])  # then stalls
    data, after = await closed_within(reader, 5)
    assert after < 3
    error = assert_firehose_error(data, 408, "RequestTimeoutException")
    assert "0.5 seconds" in error["message"]
    assert destination.attempts == []
    writer.close()


async def test_past_the_body_memory_cap_a_request_is_answered_503(serve: Serve) -> None:
    port, _ = await serve(
        HttpLimits(keepalive_timeout=30, header_timeout=30, body_timeout=30, max_request_memory=MIB)
    )
    # A stalled upload that declared 800 KiB holds that much of the 1 MiB cap...
    stalled_reader, stalled = await connect(port)
    stalled.write(head(800 * 1024) + b'{"DeliveryStreamName":')
    await asyncio.sleep(0.2)
    # ...so a second 300 KiB request waits for room, then is refused in Firehose's shape.
    body = put_record(b"x" * 220_000)
    reader, writer = await connect(port)
    began = time.monotonic()
    writer.write(head(len(body)) + body)
    status_line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert time.monotonic() - began < 3
    length = int(answer(status_line)[1]["content-length"])
    data = status_line + await reader.readexactly(length)
    error = assert_firehose_error(data, 503, "ServiceUnavailableException")
    assert "retry" in error["message"]
    # A small request still fits beside the stalled one.
    small = put_record(b"small")
    reader2, writer2 = await connect(port)
    writer2.write(head(len(small)) + small)
    assert (await reader2.readline()).startswith(b"HTTP/1.1 200")
    for w in (stalled, writer, writer2):
        w.close()
    del stalled_reader


async def test_a_body_that_is_not_the_gzip_it_claims_is_answered_400(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port, destination = await serve(FAST)
    body = put_record(b"x")
    reader, writer = await connect(port)
    writer.write(head(len(body), "Content-Encoding: gzip") + body)
    data, _ = await closed_within(reader, 5)
    error = assert_firehose_error(data, 400, "SerializationException")
    assert "gzip" in error["message"]
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
    assert destination.attempts == []
    writer.close()


async def test_a_gzip_body_is_decoded(serve: Serve) -> None:
    port, _ = await serve(FAST)
    body = gzip.compress(put_record(b"zipped"))
    reader, writer = await connect(port)
    writer.write(head(len(body), "Content-Encoding: gzip", "Connection: close") + body)
    data, _ = await closed_within(reader, 5)
    status, _, answer_body = answer(data)
    assert status == 200 and answer_body["RecordId"]
    writer.close()


async def test_a_client_gone_mid_body_logs_one_warning(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port, destination = await serve(FAST)
    caplog.set_level(logging.DEBUG, logger="firehose")
    caplog.set_level(logging.INFO, logger="aiohttp")
    reader, writer = await connect(port)
    writer.write(head(1000) + b'{"DeliveryStreamName":')
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.sleep(0.5)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, caplog.text
    assert "disconnected" in problems[0].getMessage()
    assert problems[0].exc_info is None
    assert destination.attempts == []
    del reader


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"HELLO THERE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nbad header line\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: test\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: nope\r\n\r\n",
    ],
    ids=["request-line", "header", "path", "content-length"],
)
async def test_malformed_http_is_answered_400_in_firehose_shape(
    serve: Serve, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    port, _ = await serve(FAST)
    caplog.set_level(logging.DEBUG)
    reader, writer = await connect(port)
    writer.write(request_bytes)
    data, _ = await closed_within(reader, 5)
    error = assert_firehose_error(data, 400, "SerializationException")
    assert error["message"].startswith("Malformed HTTP request: ")
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert len([r for r in caplog.records if "bad HTTP request" in r.getMessage()]) == 1
    writer.close()
