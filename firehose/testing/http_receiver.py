"""An HTTP endpoint that checks every request against Firehose's contract and misbehaves on
demand, in a thread of its own so that blocking tests and benchmarks can use it too."""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from firehose.loopthread import LoopThread
from firehose.testing.servers import free_port

# What `answers` (or `default`) may hold, one per request.
BEHAVIOURS = (
    "ok",  # 200 with the acknowledgement
    "500",  # 500 with {"errorMessage": ...}
    "413",  # 413 Payload Too Large
    "wrong-id",  # 200 acknowledging another request id
    "not-json",  # 200 whose body is not JSON
    "too-large",  # 200 with a body over 1 MiB (Content-Length says so)
    "too-large-chunked",  # the same, streamed without a Content-Length
    "wrong-type",  # 200 with Content-Type text/plain
    "encoded",  # 200 with Content-Encoding gzip
    "redirect",  # 307 to the same URL
    "reset",  # the connection is reset, no answer
    "hang",  # no answer for `hang_seconds`
)
BODY_KEYS = {"requestId", "timestamp", "records"}


@dataclass
class Received:
    """One request the receiver took (acknowledged or not)."""

    request_id: str
    timestamp: int
    records: list[bytes]
    headers: dict[str, str]
    answered: str  # the behaviour it got
    peer: str = ""  # the client's address and port: one per connection


@dataclass
class HttpReceiver:
    """Checks headers and body of every POST; `problems` lists every breach of the contract.

    Give the expected `access_key`, `common_attributes`, `source_arn` and `gzip`; what is None
    is checked to be absent (`source_arn` None only checks the ARN's shape).
    """

    access_key: str | None = None
    common_attributes: dict[str, str] | None = None
    source_arn: str | None = None
    gzip: bool = False
    default: str = "ok"
    hang_seconds: float = 3600.0
    port: int = field(default_factory=free_port)
    answers: deque[str] = field(default_factory=deque)  # behaviours to use next, in order
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _thread: LoopThread | None = None
    _runner: web.AppRunner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/firehose"

    def start(self) -> HttpReceiver:
        self._thread = LoopThread("http-receiver")
        asyncio.run_coroutine_threadsafe(self._start(), self._thread._loop).result(10)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._thread._loop).result(10)
        self._thread.stop()
        self._thread = None

    def acknowledged(self) -> list[Received]:
        return [r for r in self.received if r.answered == "ok"]

    def records(self) -> list[bytes]:
        """Every record of every acknowledged request, in order."""
        return [record for r in self.acknowledged() for record in r.records]

    async def _start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/firehose", self._handle)
        # A hanging handler is cancelled when its client gives up, and does not hold up stop().
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
            auto_decompress=False,  # to see that the body really is gzip'd
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next(self) -> str:
        with self._lock:
            return self.answers.popleft() if self.answers else self.default

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        behaviour = self._next()
        raw = await request.read()
        problems, received = self._check(request, raw)
        if received is not None:
            received.answered = behaviour if not problems else "refused"
            self.received.append(received)
        if problems:
            self.problems += problems
            return web.json_response({"errorMessage": "; ".join(problems)}, status=400)
        assert received is not None
        return await self._answer(request, behaviour, received.request_id)

    def _check(self, request: web.Request, raw: bytes) -> tuple[list[str], Received | None]:
        problems: list[str] = []
        headers = request.headers

        def expect(name: str, wanted: str | None) -> None:
            if headers.get(name) != wanted:
                problems.append(f"{name} is {headers.get(name)!r}, not {wanted!r}")

        expect("X-Amz-Firehose-Protocol-Version", "1.0")
        expect("Content-Type", "application/json")
        expect("Content-Encoding", "gzip" if self.gzip else None)
        expect("X-Amz-Firehose-Access-Key", self.access_key)
        attributes = headers.get("X-Amz-Firehose-Common-Attributes")
        common = self.common_attributes
        wanted = None if common is None else {"commonAttributes": common}
        if (json.loads(attributes) if attributes else None) != wanted:
            problems.append(f"X-Amz-Firehose-Common-Attributes is {attributes!r}")
        arn = headers.get("X-Amz-Firehose-Source-Arn", "")
        if self.source_arn is not None:
            expect("X-Amz-Firehose-Source-Arn", self.source_arn)
        elif not (arn.startswith("arn:aws:firehose:") and ":deliverystream/" in arn):
            problems.append(f"X-Amz-Firehose-Source-Arn is {arn!r}")
        request_id = headers.get("X-Amz-Firehose-Request-Id", "")
        try:
            uuid.UUID(request_id)
        except ValueError:
            problems.append(f"X-Amz-Firehose-Request-Id {request_id!r} is not a uuid")
        try:
            document = json.loads(gzip.decompress(raw) if self.gzip else raw)
        except (ValueError, OSError) as exc:
            return [*problems, f"the body is not (gzip'd) JSON: {exc}"], None
        if not isinstance(document, dict) or set(document) != BODY_KEYS:
            return [*problems, f"the body's keys are {list(document)}"], None
        if document["requestId"] != request_id:
            problems.append("the body's requestId is not the header's")
        timestamp = document["timestamp"]
        if not isinstance(timestamp, int) or abs(time.time() * 1000 - timestamp) > 60_000:
            problems.append(f"the body's timestamp {timestamp!r} is not now in epoch ms")
        records: list[bytes] = []
        for item in document["records"]:
            if not isinstance(item, dict) or set(item) != {"data"}:
                problems.append(f"a record is {item!r}")
                continue
            try:
                records.append(base64.b64decode(item["data"], validate=True))
            except (binascii.Error, TypeError):
                problems.append(f"a record's data is not base64: {item['data']!r}")
        peer = str(request.transport.get_extra_info("peername")) if request.transport else ""
        return problems, Received(request_id, timestamp, records, dict(headers), "", peer)

    async def _answer(
        self, request: web.Request, behaviour: str, request_id: str
    ) -> web.StreamResponse:
        ack = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
        if behaviour == "ok":
            return web.json_response(ack)
        if behaviour == "500":
            return web.json_response({"errorMessage": "the endpoint is down (test)"}, status=500)
        if behaviour == "413":
            return web.json_response({"errorMessage": "too big (test)"}, status=413)
        if behaviour == "wrong-id":
            return web.json_response({**ack, "requestId": str(uuid.uuid4())})
        if behaviour == "not-json":
            return web.Response(text="OK", content_type="application/json")
        if behaviour == "too-large":
            padding = "x" * (1024 * 1024)
            return web.json_response({**ack, "padding": padding})
        if behaviour == "too-large-chunked":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(json.dumps(ack)[:-1].encode() + b', "padding": "')
            for _ in range(20):
                await response.write(b"x" * 65536)
            await response.write(b'"}')
            await response.write_eof()
            return response
        if behaviour == "wrong-type":
            return web.Response(text=json.dumps(ack), content_type="text/plain")
        if behaviour == "encoded":
            body = gzip.compress(json.dumps(ack).encode())
            return web.Response(
                body=body,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        if behaviour == "redirect":
            raise web.HTTPTemporaryRedirect(self.url)
        if behaviour == "reset":
            _reset(request)
            return web.Response()  # goes nowhere: the connection is gone
        if behaviour == "hang":
            await asyncio.sleep(self.hang_seconds)
            return web.json_response(ack)
        raise AssertionError(f"unknown behaviour {behaviour!r}")


def _reset(request: web.Request) -> None:
    """Close the connection with a TCP reset (SO_LINGER 0), as a crashed proxy would."""
    transport = request.transport
    assert transport is not None
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
