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


BATCH_TARGET = "X-Amz-Target: Firehose_20150804.PutRecordBatch"
SERIALIZATION = "SerializationException"


def put_batch(*records: bytes, stream: str = "events") -> bytes:
    items = [{"Data": base64.b64encode(record).decode()} for record in records]
    return orjson.dumps({"DeliveryStreamName": stream, "Records": items})


def batch_request(body: bytes, *extra: str) -> bytes:
    lines = ["POST / HTTP/1.1", "Host: test", BATCH_TARGET, f"Content-Length: {len(body)}"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode() + body


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


_SLOW_RECORD = put_record(b"slow")
# Requests cut short, for aiohttp's path (PutRecord) and the direct one (PutRecordBatch).
CUT_SHORT = pytest.mark.parametrize(
    "cut_short",
    [
        head(len(_SLOW_RECORD)) + _SLOW_RECORD[: len(_SLOW_RECORD) // 2],
        batch_request(put_batch(b"slow"))[:-5],
    ],
    ids=["aiohttp", "direct"],
)


@CUT_SHORT
async def test_a_body_sent_too_slowly_is_answered_408_and_closed(
    serve: Serve, cut_short: bytes
) -> None:
    port, destination = await serve(
        HttpLimits(keepalive_timeout=30, header_timeout=30, body_timeout=0.5)
    )
    reader, writer = await connect(port)
    writer.write(cut_short)  # then stalls
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


@CUT_SHORT
async def test_a_client_gone_mid_body_logs_one_warning(
    serve: Serve, caplog: pytest.LogCaptureFixture, cut_short: bytes
) -> None:
    port, destination = await serve(FAST)
    caplog.set_level(logging.DEBUG, logger="firehose")
    caplog.set_level(logging.INFO, logger="aiohttp")
    reader, writer = await connect(port)
    writer.write(cut_short)
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


# -- the direct path: PutRecordBatch without aiohttp's request objects --------------------------


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    """One whole answer off a kept-alive connection."""
    head_part = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(answer(head_part)[1]["content-length"])
    return answer(head_part + await asyncio.wait_for(reader.readexactly(length), 5))


async def test_a_batch_sent_in_small_pieces_is_answered_once_whole(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies: list[bytes] = []
    answer_direct = FirehoseApi.answer_direct

    async def spy(api: FirehoseApi, raw: memoryview) -> Any:
        bodies.append(bytes(raw))
        return await answer_direct(api, raw)

    monkeypatch.setattr(FirehoseApi, "answer_direct", spy)
    port, _ = await serve(FAST)
    request = batch_request(put_batch(b"one", b"two", b"three"))
    reader, writer = await connect(port)
    for start in range(0, len(request), 7):
        writer.write(request[start : start + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    status, headers, body = await read_answer(reader)
    assert status == 200 and headers["x-amzn-requestid"]
    assert body["FailedPutCount"] == 0 and len(body["RequestResponses"]) == 3
    assert len({entry["RecordId"] for entry in body["RequestResponses"]}) == 3
    assert bodies == [put_batch(b"one", b"two", b"three")]  # whole, once, by the direct path
    writer.close()


async def test_pipelined_requests_of_both_paths_are_answered_in_order(serve: Serve) -> None:
    port, _ = await serve(FAST)
    single = put_record(b"single")
    reader, writer = await connect(port)
    writer.write(
        batch_request(put_batch(b"a", b"b"))
        + head(len(single))
        + single
        + batch_request(put_batch(b"c", b"d", b"e"))
        + batch_request(b'{"DeliveryStreamName":"events","Records":[]}')
    )
    first, second, third, fourth = [await read_answer(reader) for _ in range(4)]
    assert (first[0], len(first[2]["RequestResponses"])) == (200, 2)
    assert (second[0], set(second[2])) == (200, {"RecordId", "Encrypted"})
    assert (third[0], len(third[2]["RequestResponses"])) == (200, 3)
    assert (fourth[0], fourth[2]["__type"]) == (400, "ValidationException")
    writer.close()


async def test_a_connection_goes_on_direct_after_a_request_aiohttp_answered(
    serve: Serve,
) -> None:
    port, destination = await serve(FAST)
    reader, writer = await connect(port)
    single = put_record(b"first")
    writer.write(head(len(single)) + single[:10])
    await asyncio.sleep(0.05)
    writer.write(single[10:])  # aiohttp reads this one's body as it comes
    assert (await read_answer(reader))[0] == 200
    for round_ in range(3):
        writer.write(batch_request(put_batch(b"r%d" % round_)))
        status, _, body = await read_answer(reader)
        assert (status, body["FailedPutCount"]) == (200, 0)
    writer.close()
    del destination


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (
            b'{"DeliveryStreamName":"events","Records":[{"Data":"!!"}]}',
            "SerializationException",
            400,
        ),
        (
            b'{"DeliveryStreamName":"events","Records":[{"Data":"eA=="}]',
            "SerializationException",
            400,
        ),
        (put_batch(b"x", stream="nope"), "ResourceNotFoundException", 400),
    ],
    ids=["bad-base64", "bad-json", "unknown-stream"],
)
async def test_batches_the_direct_path_refuses_get_the_api_s_errors(
    serve: Serve, body: bytes, code: str, status: int
) -> None:
    port, destination = await serve(FAST)
    reader, writer = await connect(port)
    writer.write(batch_request(body, "Connection: close"))
    data, _ = await closed_within(reader, 5)
    assert_firehose_error(data, status, code)
    assert answer(data)[1]["x-amzn-errortype"] == code
    assert destination.attempts == []
    writer.close()


async def test_connection_close_ends_the_connection_after_a_direct_answer(serve: Serve) -> None:
    port, _ = await serve(FAST)
    reader, writer = await connect(port)
    writer.write(batch_request(put_batch(b"bye"), "Connection: close"))
    data, after = await closed_within(reader, 5)
    status, headers, body = answer(data)
    assert (status, headers["connection"], body["FailedPutCount"]) == (200, "close", 0)
    assert after < 3
    writer.close()


async def test_a_batch_past_the_body_memory_cap_waits_then_is_answered_503(
    serve: Serve,
) -> None:
    port, _ = await serve(
        HttpLimits(keepalive_timeout=30, header_timeout=30, body_timeout=30, max_request_memory=MIB)
    )
    stalled_reader, stalled = await connect(port)
    stalled.write(batch_request(put_batch(b"x" * 600_000))[:-1000])  # holds 800 KiB of the cap
    await asyncio.sleep(0.2)
    reader, writer = await connect(port)
    began = time.monotonic()
    writer.write(batch_request(put_batch(b"y" * 220_000)))
    status, _, body = await read_answer(reader)
    assert (status, body["__type"]) == (503, "ServiceUnavailableException")
    assert time.monotonic() - began < 3
    stalled.close()  # gives its reservation back: the same request now fits
    await asyncio.sleep(0.2)
    writer.write(batch_request(put_batch(b"y" * 220_000)))
    assert (await read_answer(reader))[0] == 200
    writer.close()
    del stalled_reader


async def test_a_chunked_batch_is_read_by_aiohttp(serve: Serve) -> None:
    port, _ = await serve(FAST)
    body = put_batch(b"chunked")
    reader, writer = await connect(port)
    lines = ["POST / HTTP/1.1", "Host: test", BATCH_TARGET, "Transfer-Encoding: chunked"]
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + chunked)
    status, _, answer_body = await read_answer(reader)
    assert (status, answer_body["FailedPutCount"]) == (200, 0)
    writer.write(batch_request(put_batch(b"after")))  # the connection stays aiohttp's
    assert (await read_answer(reader))[0] == 200
    writer.close()
