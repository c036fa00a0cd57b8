"""The HTTP server under the API: what one client may hold, and answers to broken HTTP.

Idle and slow connections time out, request bodies held in memory at once have a cap, and
malformed HTTP is answered in Firehose's error shape. aiohttp has no hook for a header deadline
or for rendering its parser errors, so its connection handler is subclassed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.web_protocol import RequestHandler

from firehose.errors import FirehoseError, SerializationError, ServiceUnavailableError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MIB = 1024 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
# How long a request waits for room under the body-memory cap before it is answered 503.
MEMORY_WAIT_SECONDS = 1.0
# On shutdown, how long aiohttp lets a request still in flight finish: puts are refused by then.
RUNNER_SHUTDOWN_SECONDS = 1.0


@dataclass(frozen=True)
class HttpLimits:
    """What one client may hold of the server: time on a connection, bytes of body in memory."""

    keepalive_timeout: float = 75.0
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_request_memory: int = 256 * MIB


class BodyMemory:
    """Request-body bytes held at once, reserved by Content-Length before the body is read.

    Past the cap a request waits up to `wait` seconds for room, then is answered 503: a flood of
    large or stalled bodies must not grow the process without bound.
    """

    def __init__(self, capacity: int, wait: float = MEMORY_WAIT_SECONDS) -> None:
        self.capacity = capacity
        self.wait = wait
        self.held = 0
        self._waiting = 0
        self._freed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        # A body larger than the whole cap could never fit: it may run alone instead.
        size = min(size, self.capacity)
        if self.held + size > self.capacity:
            await self._wait_for_room(size)
        self.held += size
        try:
            yield
        finally:
            self.held -= size
            if self._waiting:  # waking nobody costs a lock round trip per request
                async with self._freed:
                    self._freed.notify_all()

    async def _wait_for_room(self, size: int) -> None:
        self._waiting += 1
        try:
            async with asyncio.timeout(self.wait), self._freed:
                await self._freed.wait_for(lambda: self.held + size <= self.capacity)
        except TimeoutError:
            raise ServiceUnavailableError(
                "Too many request bytes in flight; retry shortly."
            ) from None
        finally:
            self._waiting -= 1


def body_reservation(request: web.Request) -> int:
    """Bytes to reserve for a body: its Content-Length, or the most it may decode to."""
    length = request.content_length
    if length is None or request.headers.get("Content-Encoding", "identity") != "identity":
        return MAX_BODY_BYTES
    return length


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def error_response(exc: FirehoseError, request_id: str, status: int | None = None) -> web.Response:
    return web.Response(
        status=status or exc.status,
        body=orjson.dumps(exc.body()),
        content_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": exc.code},
    )


async def answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response`, then end the connection without reading the rest of the body: aiohttp
    would otherwise linger on it, which a stalled client never sends and a broken one raises."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


class _Connection(RequestHandler):
    """aiohttp's connection handler, plus a deadline for request headers and Firehose-shaped
    answers to malformed HTTP (aiohttp has no hook for either short of subclassing)."""

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._heads_before_deadline = 0

    def data_received(self, data: bytes) -> None:
        # The deadline runs from the first byte of a request head until the head is parsed;
        # keepalive_timeout covers a connection that sends nothing at all.
        idle = not self._request_in_progress and not self._messages
        heads = self._request_count
        super().data_received(data)
        if self._request_count > heads:
            self._cancel_header_deadline()
        elif idle and self._header_deadline is None and not self._force_close:
            self._heads_before_deadline = heads
            self._header_deadline = self._loop.call_later(self._header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._request_count == self._heads_before_deadline and not self._request_in_progress:
            log.debug(
                "closing a connection: request headers incomplete after %gs", self._header_timeout
            )
            self.force_close()

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Malformed HTTP (and bugs) answered in Firehose's shape, logged in one line."""
        error: FirehoseError
        if status >= 500:
            log.error("unhandled error answering %s", request.remote, exc_info=exc)
            error = FirehoseError("We encountered an internal error.")
        else:
            # A bad method on a fresh connection is mostly scanners or TLS on a plain port.
            noise = self._request_count == 1 and isinstance(exc, BadHttpMethod)
            reason = first_line(message or str(exc))
            log.log(
                logging.DEBUG if noise else logging.WARNING,
                "bad HTTP request from %s: %s",
                request.remote,
                reason,
            )
            error = SerializationError(f"Malformed HTTP request: {reason}")
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way; closing the connection")
        response = error_response(error, str(uuid.uuid4()), status)
        response.force_close()
        return response


class _Server(web.Server):
    """aiohttp's server, making connections of our `_Connection` kind."""

    def __init__(
        self,
        handler: Any,
        *,
        request_factory: Any,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, request_factory=request_factory, loop=loop, **kwargs)
        self._header_timeout = header_timeout
        self._connection_args = kwargs

    def __call__(self) -> RequestHandler:
        return _Connection(
            self, loop=self._loop, header_timeout=self._header_timeout, **self._connection_args
        )


class Runner(web.AppRunner):
    """An AppRunner whose server is a `_Server`: the app's startup hooks and routing as usual."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, shutdown_timeout=RUNNER_SHUTDOWN_SECONDS, **kwargs)
        self._header_timeout = header_timeout
        self._connection_kwargs = kwargs

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _Server(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            header_timeout=self._header_timeout,
            **self._connection_kwargs,
        )
