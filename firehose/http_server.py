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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.web_protocol import RequestHandler

from firehose.errors import (
    FirehoseError,
    RequestTimeoutError,
    SerializationError,
    ServiceUnavailableError,
)
from firehose.http_direct import (
    MAX_HEAD_BYTES,
    DirectAnswer,
    DirectHandler,
    Head,
    Held,
    frame_head,
    render,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MIB = 1024 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
# How long a request waits for room under the body-memory cap before it is answered 503.
MEMORY_WAIT_SECONDS = 1.0
# On shutdown, how long aiohttp lets a request still in flight finish: puts are refused by then.
RUNNER_SHUTDOWN_SECONDS = 1.0
# The direct path's X-Amz-Target, and the most it holds of a connection's unanswered bytes:
# above any one request it takes, so a buffer this full holds a whole request to answer.
DIRECT_TARGET = b"Firehose_20150804.PutRecordBatch"
_HELD_BOUND = MAX_BODY_BYTES + MAX_HEAD_BYTES


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
                await self._notify()

    def try_hold(self, size: int) -> bool:
        """Reserve `size` bytes now if they fit under the cap (a body larger than the whole cap
        only when nothing else is held); False leaves nothing reserved."""
        size = min(size, self.capacity)
        if self.held + size > self.capacity:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        """Give back what `try_hold` reserved."""
        self.held -= min(size, self.capacity)
        if self._waiting:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
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


@dataclass(frozen=True)
class Direct:
    """The direct path of a server: its PutRecordBatch handler, and the body memory it
    reserves from (the cap aiohttp's requests share)."""

    handler: DirectHandler
    memory: BodyMemory
    body_timeout: float


def body_reservation(request: web.Request) -> int:
    """Bytes to reserve for a body: its Content-Length, or the most it may decode to."""
    length = request.content_length
    if length is None or request.headers.get("Content-Encoding", "identity") != "identity":
        return MAX_BODY_BYTES
    return length


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def error_answer(exc: FirehoseError, request_id: str, status: int | None = None) -> DirectAnswer:
    """An error in Firehose's shape: the JSON body and the fields SDKs read the code from."""
    return DirectAnswer(
        status or exc.status,
        orjson.dumps(exc.body()),
        (("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", exc.code)),
    )


def error_response(exc: FirehoseError, request_id: str, status: int | None = None) -> web.Response:
    answer = error_answer(exc, request_id, status)
    return web.Response(
        status=answer.status,
        body=answer.body,
        content_type=CONTENT_TYPE,
        headers=dict(answer.headers),
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

    def __init__(
        self,
        manager: web.Server,
        *,
        header_timeout: float,
        direct: Direct | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._heads_before_deadline = 0
        self._direct = direct
        # The direct path's state: bytes of requests not yet answered nor handed to aiohttp,
        # the request being answered, the body memory it holds; `_handed`: aiohttp has the
        # connection for good (it may hold part of a request).
        self._held = Held()
        self._answering: asyncio.Task[None] | None = None
        self._reserved = 0
        self._held_deadline: asyncio.TimerHandle | None = None
        self._held_paused = False
        self._owed = 0  # bytes of the request aiohttp is reading that are still to come
        self._handed = direct is None

    def data_received(self, data: bytes) -> None:
        if self._handed:
            self._to_aiohttp(data)
            return
        if self._owed:  # the rest of a request aiohttp is reading
            part = data[: self._owed]
            self._owed -= len(part)
            self._to_aiohttp(part)
            data = data[len(part) :]
            if not data:
                return
        if not self._held.size and self._answering is None and not self._aiohttp_idle():
            # A request handed to aiohttp is still being answered and the client sends the
            # next one (pipelining): the rest of the connection follows it there, in order.
            self._hand_over(data)
            return
        self._held.add(data)
        if self._held.size > _HELD_BOUND and not self._held_paused and self.transport is not None:
            # Requests pipelined behind one being answered: read no more until they are.
            self.transport.pause_reading()
            self._held_paused = True
        self._serve_held()

    def _aiohttp_idle(self) -> bool:
        return not self._request_in_progress and not self._messages

    def _serve_held(self) -> None:
        """Answer the held requests in order: direct ones here once whole, others handed to
        aiohttp as they arrive (it is idle whenever one starts, so its parser starts each at
        its first byte, and it is given exactly that request's bytes)."""
        assert self._direct is not None
        held = self._held
        while held.size and self._answering is None and not self._handed:
            if self._force_close or self.transport is None:
                return
            if not self._aiohttp_idle():
                self._hand_over()  # aiohttp answers one handed before: the rest go there
                return
            head = held.head
            if head is None:
                head_bytes = held.head_bytes()
                if head_bytes is None:
                    if held.size > MAX_HEAD_BYTES:
                        self._hand_over()  # aiohttp answers an overlong head
                    else:
                        self._start_deadline(self._header_timeout, self._head_late)
                    return
                self._cancel_deadline()
                head = frame_head(head_bytes, DIRECT_TARGET, MAX_BODY_BYTES)
                if head is None:
                    self._hand_over()  # only aiohttp may read this one
                    return
                if not head.direct:
                    request = held.take(min(held.size, head.end))
                    self._owed = head.end - len(request)
                    self._to_aiohttp(request)
                    continue
                if not self._reserve(head.content_length):
                    self._hand_over()  # aiohttp's path waits for room, then answers 503
                    return
                held.head = head
            if held.size < head.end:
                self._start_deadline(self._direct.body_timeout, self._body_late)
                return
            self._cancel_deadline()
            request = held.take(head.end)
            if held.size <= _HELD_BOUND:
                self._resume_held_reading()
            self._answering = self._loop.create_task(self._answer(request, head))

    def _reserve(self, size: int) -> bool:
        assert self._direct is not None and not self._reserved
        if not self._direct.memory.try_hold(size):
            return False
        self._reserved = size
        return True

    def _release(self) -> None:
        if self._reserved and self._direct is not None:
            self._direct.memory.release(self._reserved)
        self._reserved = 0

    async def _answer(self, request: bytes, head: Head) -> None:
        assert self._direct is not None
        try:
            answer = await self._direct.handler(memoryview(request)[head.body_start :])
        except Exception as exc:  # the handler shapes every answer; this is a bug
            log.error("unhandled error answering a direct request", exc_info=exc)
            internal = FirehoseError("We encountered an internal error.")
            answer = error_answer(internal, str(uuid.uuid4()))
        finally:
            self._release()
            self._answering = None
        if answer is None:  # not a body the direct path answers: aiohttp reads it all
            self._held.put_back(request)
            self._hand_over()
            return
        self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
        transport = self.transport
        if transport is None or self._force_close:
            return
        transport.write(render(answer, CONTENT_TYPE, head.keep_alive))
        if not head.keep_alive:
            self.force_close()
            return
        if self.writing_paused:
            with contextlib.suppress(ConnectionError):
                await self._drain_helper()
        self._serve_held()

    def _hand_over(self, data: bytes = b"") -> None:
        """aiohttp takes the connection for good, starting with what is held."""
        self._handed = True
        self._cancel_deadline()
        self._release()
        self._resume_held_reading()
        self._held.add(data)
        held = self._held.take(self._held.size)
        if held:
            self._to_aiohttp(held)

    def _start_deadline(self, seconds: float, late: Callable[[], None]) -> None:
        if self._held_deadline is None:
            self._held_deadline = self._loop.call_later(seconds, late)

    def _cancel_deadline(self) -> None:
        if self._held_deadline is not None:
            self._held_deadline.cancel()
            self._held_deadline = None

    def _head_late(self) -> None:
        self._held_deadline = None
        self._close_for_slow_head()

    def _body_late(self) -> None:
        """A direct request's body slower than the body timeout: answered 408 and closed, as
        the API answers one that aiohttp reads."""
        self._held_deadline = None
        assert self._direct is not None
        self._release()
        self._held = Held()  # answered: not a body cut short when the connection closes
        error = RequestTimeoutError(
            f"The request body did not arrive within {self._direct.body_timeout:g} seconds."
        )
        if self.transport is not None:
            answer = error_answer(error, str(uuid.uuid4()))
            self.transport.write(render(answer, CONTENT_TYPE, keep_alive=False))
        self.force_close()

    def _resume_held_reading(self) -> None:
        if self._held_paused:
            self._held_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        answering = self._answering
        if answering is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(answering), timeout)
        await super().shutdown(timeout)

    def _to_aiohttp(self, data: bytes) -> None:
        # The deadline runs from the first byte of a request head until the head is parsed;
        # keepalive_timeout covers a connection that sends nothing at all.
        idle = self._aiohttp_idle()
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
            self._close_for_slow_head()

    def _close_for_slow_head(self) -> None:
        """A request head not whole within the header timeout, on either path: closed."""
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
        self._cancel_deadline()
        if self._held.head is not None:  # a direct request's body cut short
            log.warning("PutRecordBatch: the client disconnected before sending its whole request")
            self._release()
        # A direct request being answered runs to its end (its records may be taken already);
        # its answer then finds no transport and is dropped.
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
        direct: Direct | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, request_factory=request_factory, loop=loop, **kwargs)
        self._header_timeout = header_timeout
        self._direct = direct
        self._connection_args = kwargs

    def __call__(self) -> RequestHandler:
        return _Connection(
            self,
            loop=self._loop,
            header_timeout=self._header_timeout,
            direct=self._direct,
            **self._connection_args,
        )


class Runner(web.AppRunner):
    """An AppRunner whose server is a `_Server`: the app's startup hooks and routing as usual;
    `direct`: PutRecordBatch requests of the plain shape skip aiohttp's request objects."""

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float,
        direct: Direct | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, shutdown_timeout=RUNNER_SHUTDOWN_SECONDS, **kwargs)
        self._header_timeout = header_timeout
        self._direct = direct
        self._connection_kwargs = kwargs

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _Server(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            header_timeout=self._header_timeout,
            direct=self._direct,
            **self._connection_kwargs,
        )
