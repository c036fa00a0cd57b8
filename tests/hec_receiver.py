"""A Splunk HTTP Event Collector for the tests, on 127.0.0.1, speaking HEC's documented protocol.

No real Splunk runs here. This receiver checks the token (`Authorization: Splunk <token>`),
requires a data channel, takes `/services/collector/raw` and `/services/collector/event`, hands
out ackIds per channel and answers `/services/collector/ack` (a true is reported once, then
forgotten), with HEC's reply codes. Switches make it fail on demand.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STICKY_COOKIE = "AWSELB"


def hec_reply(status: int, code: int, text: str, **extra: Any) -> web.Response:
    return web.json_response({"text": text, "code": code, **extra}, status=status)


def split_events(body: bytes) -> list[Any] | web.Response:
    """The `{"event": …}` objects of an /event body (concatenated, whitespace allowed between),
    or HEC's error reply naming the first bad one."""
    decoder = json.JSONDecoder()
    text = body.decode(errors="replace")
    events: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            break
        number = len(events)
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return hec_reply(400, 6, "Invalid data format", **{"invalid-event-number": number})
        if not isinstance(value, dict):
            return hec_reply(400, 6, "Invalid data format", **{"invalid-event-number": number})
        if "event" not in value:
            return hec_reply(400, 12, "Event field is required", **{"invalid-event-number": number})
        if value["event"] in ("", None):
            return hec_reply(
                400, 13, "Event field cannot be blank", **{"invalid-event-number": number}
            )
        events.append(value["event"])
    if not events:
        return hec_reply(400, 5, "No data")
    return events


@dataclass
class HecReceiver:
    """What HEC indexed (`raw` bodies, `events`), and switches for failures on demand."""

    token: str = "00000000-1111-2222-3333-444444444444"
    token_disabled: bool = False
    ack_enabled: bool = True
    busy: bool = False  # 503, code 9: "Server is busy"
    acks_never_true: bool = False
    ack_delay: float = 0.0  # seconds from send until the ack turns true
    sticky: bool = False  # acks only reach the indexer that took the data with its cookie
    raw: list[bytes] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    _next_ack: dict[str, int] = field(default_factory=dict)
    _pending: dict[str, dict[int, float]] = field(default_factory=dict)  # id -> when true

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/services/collector/raw", self._raw)
        app.router.add_post("/services/collector/event", self._event)
        app.router.add_post("/services/collector/ack", self._ack)
        return app

    @property
    def raw_lines(self) -> list[bytes]:
        return b"".join(self.raw).splitlines(keepends=True)

    def _check(self, request: web.Request) -> web.Response | str:
        """Token and channel checks, in HEC's order: the channel, or the error reply."""
        self.requests.append((request.path, dict(request.headers)))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer is not None:
            self.peers.add((peer[0], peer[1]))
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return hec_reply(401, 2, "Token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme != "Splunk" or not token:
            return hec_reply(401, 3, "Invalid authorization")
        if token != self.token:
            return hec_reply(403, 4, "Invalid token")
        if self.token_disabled:
            return hec_reply(403, 1, "Token disabled")
        if self.busy:
            return hec_reply(503, 9, "Server is busy")
        channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if not channel:
            return hec_reply(400, 10, "Data channel is missing")
        try:
            uuid.UUID(channel)
        except ValueError:
            return hec_reply(400, 11, "Invalid data channel")
        return channel

    def _taken(self, request: web.Request, channel: str) -> web.Response:
        if not self.ack_enabled:
            return hec_reply(200, 0, "Success")
        ack_id = self._next_ack.get(channel, 0)
        self._next_ack[channel] = ack_id + 1
        loop = asyncio.get_running_loop()
        self._pending.setdefault(channel, {})[ack_id] = loop.time() + self.ack_delay
        response = hec_reply(200, 0, "Success", ackId=ack_id)
        if self.sticky and STICKY_COOKIE not in request.cookies:
            response.set_cookie(STICKY_COOKIE, "indexer-1")
        return response

    async def _raw(self, request: web.Request) -> web.Response:
        checked = self._check(request)
        if isinstance(checked, web.Response):
            return checked
        body = await request.read()
        if not body:
            return hec_reply(400, 5, "No data")
        self.raw.append(body)
        return self._taken(request, checked)

    async def _event(self, request: web.Request) -> web.Response:
        checked = self._check(request)
        if isinstance(checked, web.Response):
            return checked
        events = split_events(await request.read())
        if isinstance(events, web.Response):
            return events
        self.events.extend(events)
        return self._taken(request, checked)

    async def _ack(self, request: web.Request) -> web.Response:
        checked = self._check(request)
        if isinstance(checked, web.Response):
            return checked
        if not self.ack_enabled:
            return hec_reply(400, 14, "ACK is disabled")
        try:
            asked = [int(ack) for ack in (await request.json())["acks"]]
        except (ValueError, KeyError, TypeError):
            return hec_reply(400, 6, "Invalid data format")
        pending = self._pending.get(checked, {})
        # Behind a sticky balancer, a poll without the cookie reaches an indexer that knows
        # nothing of these ids.
        lost = self.sticky and STICKY_COOKIE not in request.cookies
        now = asyncio.get_running_loop().time()
        acks: dict[str, bool] = {}
        for ack_id in asked:
            due = pending.get(ack_id)
            done = due is not None and due <= now and not self.acks_never_true and not lost
            if done:
                del pending[ack_id]  # reported once, then forgotten
            acks[str(ack_id)] = done
        return web.json_response({"acks": acks})


class RunningReceiver:
    """A `HecReceiver` served on 127.0.0.1 from its own loop; `stop` and `start` keep the port."""

    def __init__(self, receiver: HecReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self.receiver = receiver
        self._loop = loop
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.receiver.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        """HEC down: nothing listens on the port until `start`."""
        self._call(self._stop())


@contextmanager
def hec_in_thread(receiver: HecReceiver | None = None) -> Iterator[RunningReceiver]:
    """A receiver on a thread of its own, for tests that run the service as a process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hec", daemon=True)
    thread.start()
    running = RunningReceiver(receiver or HecReceiver(), loop)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
