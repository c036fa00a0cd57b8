"""Lambda's Invoke API on 127.0.0.1, running the functions of tests/handlers.py by name.

It answers as Lambda does: 200 with the function's result, 200 with `X-Amz-Function-Error:
Unhandled` and an error document when the function raises, 404 ResourceNotFoundException for a
name it does not know, and 429 TooManyRequestsException for `throttled`, 403
AccessDeniedException for `denied`; `slow` never answers in time.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests import handlers
from transforms.lambda_handler import FunctionInfo, HandlerError, LambdaContext, encode_response

ROUTE = "/2015-03-31/functions/{name}/invocations"


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"Type": "User", "message": message}),
        content_type="application/json",
        headers={"x-amzn-ErrorType": kind},
    )


@dataclass
class FakeLambda:
    calls: Counter[str] = field(default_factory=Counter)
    invocation_types: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post(ROUTE, self._invoke)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _invoke(self, request: web.Request) -> web.Response:
        arn = request.match_info["name"]
        name = arn.split(":")[6] if arn.startswith("arn:") else arn
        self.calls[name] += 1
        self.invocation_types.append(request.headers.get("X-Amz-Invocation-Type", ""))
        if name == "throttled":
            return _error(429, "TooManyRequestsException", "Rate Exceeded.")
        if name == "denied":
            return _error(403, "AccessDeniedException", "not allowed")
        if name == "slow":
            await asyncio.sleep(2)
        function: Any = getattr(handlers, name, None)
        if not callable(function):
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        event = orjson.loads(await request.read())
        context = LambdaContext(FunctionInfo(name, arn, 128), 60)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        try:
            result = function(event, context)
            if asyncio.iscoroutine(result):
                result = await result
            body = encode_response(result)
        except (Exception, HandlerError) as exc:
            headers["X-Amz-Function-Error"] = "Unhandled"
            body = orjson.dumps(
                {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            )
        return web.Response(body=body, content_type="application/json", headers=headers)
