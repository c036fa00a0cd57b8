"""Framing requests for the direct path: which heads it takes, and how held bytes are cut."""

from __future__ import annotations

import pytest

from firehose.http_direct import DirectAnswer, Head, Held, frame_head, render

TARGET = b"Firehose_20150804.PutRecordBatch"


def head(*lines: str, request_line: str = "POST / HTTP/1.1") -> bytes:
    return ("\r\n".join([request_line, *lines]) + "\r\n\r\n").encode()


PLAIN = ("Host: h", "X-Amz-Target: Firehose_20150804.PutRecordBatch", "Content-Length: 12")


def test_a_plain_put_record_batch_is_direct() -> None:
    raw = head(*PLAIN, "Content-Type: application/x-amz-json-1.1", "User-Agent: Boto3/1.40")
    assert frame_head(raw, TARGET, 100) == Head(len(raw), 12, direct=True, keep_alive=True)


def test_field_names_are_matched_in_any_case_and_values_trimmed() -> None:
    raw = head(
        "x-amz-target:  Firehose_20150804.PutRecordBatch ", "content-length:12", "CONNECTION: Close"
    )
    assert frame_head(raw, TARGET, 100) == Head(len(raw), 12, direct=True, keep_alive=False)


@pytest.mark.parametrize(
    "raw",
    [
        head("Host: h", "X-Amz-Target: Firehose_20150804.PutRecord", "Content-Length: 12"),
        head(*PLAIN, request_line="POST /other HTTP/1.1"),
        head(*PLAIN, request_line="PUT / HTTP/1.1"),
        head(*PLAIN, "X-Amz-Target: Firehose_20150804.PutRecordBatch"),  # twice
        head("Host: h", "X-Amz-Target: Firehose_20150804.PutRecordBatch", "Content-Length: 101"),
        head("Host: h", "X-Amz-Target: Firehose_20150804.PutRecordBatch"),  # no length
    ],
    ids=["other-operation", "other-path", "other-method", "two-targets", "too-long", "no-length"],
)
def test_other_requests_are_framed_for_aiohttp(raw: bytes) -> None:
    framed = frame_head(raw, TARGET, 100)
    assert framed is not None and not framed.direct


@pytest.mark.parametrize(
    "raw",
    [
        head(*PLAIN, request_line="POST / HTTP/1.0"),
        head(*PLAIN, "Transfer-Encoding: chunked"),
        head(*PLAIN, "Content-Encoding: gzip"),
        head(*PLAIN, "Expect: 100-continue"),
        head(*PLAIN, "Upgrade: websocket"),
        head(*PLAIN, "Connection: upgrade"),
        head(*PLAIN, "Content-Length: 12"),  # twice
        head("Host: h", "Content-Length: 1x"),
        head(*PLAIN, "bad line"),
        head(*PLAIN, "Bad Name: x"),
        head(*PLAIN, "X-Ctl: a\x01b"),
        head(*PLAIN, " folded: continuation"),
        b"POST /\x00 HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
    ],
    ids=[
        "http-1.0", "chunked", "gzip", "expect", "upgrade", "connection-upgrade", "two-lengths",
        "bad-length", "no-colon", "space-in-name", "control-char", "folded", "nul-in-path",
    ],
)  # fmt: skip
def test_requests_only_aiohttp_may_read_are_not_framed(raw: bytes) -> None:
    assert frame_head(raw, TARGET, 100) is None


def test_held_pieces_are_joined_once_a_request_is_whole() -> None:
    held = Held()
    request = head(*PLAIN) + b'{"a":"body"}'
    for start in range(0, len(request), 5):
        held.add(request[start : start + 5])
    held.add(b"POST / HT")  # the start of the next request
    head_bytes = held.head_bytes()
    assert head_bytes == head(*PLAIN)
    assert held.take(len(request)) == request
    assert (held.size, held.head_bytes()) == (9, None)
    held.put_back(request)
    assert held.take(held.size) == request + b"POST / HT"
    assert held.size == 0 and held.head_bytes() is None


def test_an_answer_is_rendered_with_its_length_and_fields() -> None:
    raw = render(DirectAnswer(503, b'{"x":1}', (("x-amzn-ErrorType", "E"),)), "t/j", False)
    head_part, _, body = raw.partition(b"\r\n\r\n")
    lines = head_part.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert {
        "Content-Type: t/j",
        "Content-Length: 7",
        "x-amzn-ErrorType: E",
        "Connection: close",
    } <= set(lines)
    assert body == b'{"x":1}'
