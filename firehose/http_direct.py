"""The direct path for PutRecordBatch: whole requests framed from the connection's bytes and
answered without aiohttp's request and response objects.

aiohttp spends about 0.3 ms of event-loop CPU on each request's objects, parser callbacks and
writer: at 500 records a request that is as much as the records' own decoding. A request that
is plainly a PutRecordBatch (`POST /` over HTTP/1.1, a Content-Length body, no transfer or
content coding, no `Expect`) is answered here; anything else, or anything odd, goes to aiohttp
untouched, which owns every rule and error of HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

# The most a request head may take before the connection is left to aiohttp (which answers an
# overlong head with its own error).
MAX_HEAD_BYTES = 8190
# An HTTP/1.1 request line: method and target, no other version (1.0 keeps connections open
# by other rules).
_REQUEST_LINE = re.compile(rb"([A-Z]+ [!-~]+) HTTP/1\.1\r\n")
# Header fields as RFC 9110 spells them: a token, a colon, a value of visible characters,
# spaces and tabs. A head any other shape goes to aiohttp's parser.
_FIELDS = re.compile(rb"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_FIELD = re.compile(rb"([^:\r\n]+):[\t ]*([^\r\n]*?)[\t ]*\r\n")
# Fields whose presence makes a request aiohttp's: each changes how the body is framed or read.
_HANDED_OVER = {b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"}


@dataclass(frozen=True, slots=True)
class Head:
    """A request head framed from the connection's bytes: where its body starts and ends,
    whether the direct path answers it, whether the connection stays open after it."""

    body_start: int
    content_length: int
    direct: bool
    keep_alive: bool

    @property
    def end(self) -> int:
        return self.body_start + self.content_length


@dataclass(frozen=True, slots=True)
class DirectAnswer:
    """An answer to render: status, JSON body, and header fields beyond the usual ones."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


# Answers a body, or None when the body is not one the direct path answers (aiohttp then gets
# the whole request, as if it had just arrived).
DirectHandler = Callable[[memoryview], Awaitable[DirectAnswer | None]]


class Held:
    """A connection's bytes not yet answered, as they arrived: a request's pieces are joined
    once, when it is whole, and its head is framed once."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.size = 0
        self.head: Head | None = None  # of the first request, once framed

    def add(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.size += len(data)

    def head_bytes(self) -> bytes | None:
        """The first request's head through its empty line; None while it is incomplete."""
        first = self._chunks[0] if self._chunks else b""
        if len(first) < self.size and len(first) < MAX_HEAD_BYTES + 4:
            first = self._whole()
        end = first.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        return None if end < 0 else first[: end + 4]

    def take(self, size: int) -> bytes:
        """The first `size` bytes, no longer held."""
        whole = self._whole()
        taken, rest = (whole, b"") if len(whole) == size else (whole[:size], whole[size:])
        self._chunks = [rest] if rest else []
        self.size = len(rest)
        self.head = None
        return taken

    def put_back(self, request: bytes) -> None:
        """`request` held again, ahead of the rest."""
        self._chunks.insert(0, request)
        self.size += len(request)

    def _whole(self) -> bytes:
        if len(self._chunks) > 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0] if self._chunks else b""


def frame_head(head: bytes, target: bytes, max_body: int) -> Head | None:
    """`head` (through its empty line) framed; None when only aiohttp may read the request:
    another version of HTTP, a chunked or coded body, an upgrade, `Expect`, a field of odd
    shape. Direct: `POST /` with the X-Amz-Target field equal to `target` and a body of at
    most `max_body` bytes."""
    line = _REQUEST_LINE.match(head)
    if line is None or _FIELDS.fullmatch(head, line.end(), len(head) - 2) is None:
        return None
    content_length: int | None = None
    targets: list[bytes] = []
    keep_alive = True
    for name, value in _FIELD.findall(head, line.end(), len(head) - 2):
        name = name.lower()
        if name == b"content-length":
            if content_length is not None or not value.isdigit() or len(value) > 12:
                return None
            content_length = int(value)
        elif name == b"x-amz-target":
            targets.append(value)
        elif name == b"connection":
            token = value.lower()
            if token == b"close":
                keep_alive = False
            elif token != b"keep-alive":
                return None
        elif name in _HANDED_OVER:
            return None
    direct = (
        line.group(1) == b"POST /"
        and targets == [target]
        and content_length is not None
        and content_length <= max_body
    )
    return Head(len(head), content_length or 0, direct, keep_alive)


class _Date:
    """The Date field's value, rendered once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = formatdate(second, usegmt=True)
        return self._text


_DATE = _Date()


def render(answer: DirectAnswer, content_type: str, keep_alive: bool) -> bytes:
    """The answer as HTTP/1.1 bytes, head and body in one piece."""
    lines = [
        f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(answer.body)}",
        f"Date: {_DATE.now()}",
    ]
    lines += [f"{name}: {value}" for name, value in answer.headers]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + answer.body
