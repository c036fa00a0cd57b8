"""The thread and inline ways of running a Python transform in the service's own process.

Neither can stop a hung call: in thread mode a call past its timeout is abandoned (its thread
runs on, a daemon, until the function returns), in inline mode a synchronous function blocks
the delivery loop until it returns. Process mode (transforms/workers.py) is the one that can.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from typing import Any

import orjson

from transforms.lambda_contract import (
    FUNCTION_ERROR,
    FUNCTION_TIMED_OUT,
    RESOURCE_NOT_FOUND,
    InvokeError,
    PayloadInvoker,
)
from transforms.lambda_handler import (
    FunctionInfo,
    Handler,
    HandlerError,
    HandlerNotFound,
    LambdaContext,
    call_handler,
    encode_response,
    load_handler,
)


class _LazyHandler:
    """The handler imported at its first call (in the calling thread), not at build time: a
    module that cannot be imported fails the records with Lambda.ResourceNotFound instead."""

    def __init__(self, spec: str) -> None:
        self._spec = spec
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def get(self) -> Handler:
        with self._lock:
            if self._handler is None:
                try:
                    self._handler = load_handler(self._spec)
                except HandlerNotFound as exc:
                    raise InvokeError(RESOURCE_NOT_FOUND, f"{exc}.") from None
            return self._handler


class ThreadInvoker(PayloadInvoker):
    """Each call on a daemon thread of its own, so an abandoned call holds no pool slot and
    never delays the service's exit."""

    def __init__(self, spec: str, info: FunctionInfo) -> None:
        self._handler = _LazyHandler(spec)
        self._info = info

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        def settle(result: bytes | None, error: BaseException | None) -> None:
            if done.done():
                return  # abandoned after its timeout
            if error is not None:
                done.set_exception(error)
            else:
                assert result is not None
                done.set_result(result)

        def run() -> None:
            own_loop = asyncio.new_event_loop()
            result: bytes | None = None
            error: BaseException | None = None
            try:
                context = LambdaContext(self._info, timeout)
                result = call_handler(self._handler.get(), payload, context, own_loop)
            except InvokeError as exc:
                error = exc
            except HandlerError as exc:
                error = InvokeError(FUNCTION_ERROR, f"{exc}.", retryable=True)
            except BaseException as exc:
                error = InvokeError(FUNCTION_ERROR, f"{exc!r}.", retryable=True)
            finally:
                own_loop.close()
            with contextlib.suppress(RuntimeError):  # the service's loop closed meanwhile
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=run, name="transform", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            raise InvokeError(
                FUNCTION_TIMED_OUT,
                f"No answer after {timeout:g} s; the call was abandoned.",
                retryable=True,
            ) from None

    async def close(self) -> None:
        """Nothing to stop: abandoned threads are daemons."""


class InlineInvoker(PayloadInvoker):
    """The function called on the delivery loop itself: for cheap functions only. An async
    function's timeout is enforced; a synchronous one runs to its end."""

    def __init__(self, spec: str, info: FunctionInfo) -> None:
        self._handler = _LazyHandler(spec)
        self._info = info

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        handler = self._handler.get()
        event = orjson.loads(payload)
        context = LambdaContext(self._info, timeout)
        try:
            result: Any = handler(event, context)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(_awaited(result), timeout)
        except TimeoutError:
            raise InvokeError(
                FUNCTION_TIMED_OUT, f"No answer after {timeout:g} s.", retryable=True
            ) from None
        except (Exception, SystemExit) as exc:
            raise InvokeError(
                FUNCTION_ERROR, f"{HandlerError(type(exc).__name__, str(exc))}.", retryable=True
            ) from None
        try:
            return encode_response(result)
        except HandlerError as exc:
            raise InvokeError(FUNCTION_ERROR, f"{exc}.", retryable=True) from None

    async def close(self) -> None:
        """Nothing runs between calls."""


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
