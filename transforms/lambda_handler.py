"""Python callables run as Lambda functions: `module:function` or `path/to/file.py:function`.

Kept free of the service's heavier imports: worker processes import this module to load and
call the handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

Handler = Callable[[Any, Any], Any]

_ARN = re.compile(r"^arn:[\w-]+:lambda:")


def is_lambda_arn(spec: str) -> bool:
    """A real function (invoked through the Lambda API) rather than a Python callable."""
    return bool(_ARN.match(spec))


class HandlerNotFound(Exception):
    """The callable cannot be imported: Firehose's Lambda.ResourceNotFound."""


class HandlerError(Exception):
    """The function raised, or returned what cannot be serialised: Lambda.FunctionError."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.message = message


def load_handler(spec: str) -> Handler:
    """Import the callable named by `spec`; the working directory is importable, as Lambda's
    task root is, and a relative file path is read from it."""
    location, _, name = spec.rpartition(":")
    if not location or not name.isidentifier():
        raise HandlerNotFound(f"{spec!r} is not module:function or path/to/file.py:function")
    try:
        module = _load_file(location) if location.endswith(".py") else _load_module(location)
    except HandlerNotFound:
        raise
    except BaseException as exc:  # the module's own code may raise anything, SystemExit too
        raise HandlerNotFound(
            f"cannot import {location}: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from None
    handler = getattr(module, name, None)
    if handler is None:
        raise HandlerNotFound(f"{location} has no function {name}")
    if not callable(handler):
        raise HandlerNotFound(f"{location}:{name} is not callable")
    return handler  # type: ignore[no-any-return]


def _load_module(name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise HandlerNotFound(f"no module named {name}") from None
        raise


def _load_file(location: str) -> Any:
    path = os.path.abspath(location)
    if not os.path.isfile(path):
        raise HandlerNotFound(f"no file {location} (relative to {os.getcwd()})")
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    module_name = f"_firehose_transform_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    found = importlib.util.spec_from_file_location(module_name, path)
    if found is None or found.loader is None:
        raise HandlerNotFound(f"cannot load {location} as Python")
    module = importlib.util.module_from_spec(found)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        found.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def check_handler(spec: str) -> str | None:
    """A problem with `LambdaArn` that config validation should report, or None.

    A real ARN cannot be checked without calling AWS, so only its form is; a Python callable is
    imported (in this process) to prove a worker will find it.
    """
    from firehose.processing_config import LAMBDA_ARN, PYTHON_CALLABLE

    if is_lambda_arn(spec):
        return None if LAMBDA_ARN.match(spec) else f"{spec!r} is not a Lambda function ARN"
    if not PYTHON_CALLABLE.match(spec):
        return f"{spec!r} is not module:function or path/to/file.py:function"
    try:
        load_handler(spec)
    except HandlerNotFound as exc:
        return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class FunctionInfo:
    """What a Lambda-like context says of the function (sent to each worker once)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    function_version: str = "$LATEST"

    @classmethod
    def of(cls, spec: str, stream_arn: str, region: str, memory_mib: int) -> FunctionInfo:
        if is_lambda_arn(spec):
            name = spec.split(":")[6]
            return cls(name, spec, memory_mib)
        parts = stream_arn.split(":")
        account = parts[4] if len(parts) > 5 else "000000000000"
        name = re.sub(r"[^\w-]", "-", spec.rpartition(":")[2])[:64]
        return cls(name, f"arn:aws:lambda:{region}:{account}:function:{name}", memory_mib)


class LambdaContext:
    """The `context` argument of a Python Lambda handler, as far as handlers read it."""

    def __init__(self, info: FunctionInfo, timeout_seconds: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = info.function_name
        self.function_version = info.function_version
        self.invoked_function_arn = info.invoked_function_arn
        self.memory_limit_in_mb = info.memory_limit_in_mb
        self.log_group_name = f"/aws/lambda/{info.function_name}"
        self.log_stream_name = (
            f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        )
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _as_dict(value: Any) -> Any:
    """Powertools' response classes (and any object with `asdict`) serialise as their dict."""
    asdict = getattr(value, "asdict", None)
    if callable(asdict):
        return asdict()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_response(result: Any) -> bytes:
    """The handler's return value as Lambda's runtime would send it: JSON."""
    try:
        return orjson.dumps(result, default=_as_dict, option=orjson.OPT_PASSTHROUGH_DATACLASS)
    except (TypeError, ValueError) as exc:
        raise HandlerError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def call_handler(
    handler: Handler, payload: bytes, context: LambdaContext, loop: asyncio.AbstractEventLoop
) -> bytes:
    """Run the handler on a fresh copy of the event; an async one runs on `loop`, a loop of the
    calling thread's own (never the service's)."""
    return run_handler(handler, orjson.loads(payload), context, loop)[1]


def run_handler(
    handler: Handler, event: Any, context: LambdaContext, loop: asyncio.AbstractEventLoop
) -> tuple[Any, bytes]:
    """Run the handler on `event` (the caller's own, fresh for this call): its return value,
    with a top-level `asdict()` object already turned into its dict, and that value as Lambda's
    runtime would serialise it. The value lets a reader skip parsing the JSON again."""
    try:
        result = handler(event, context)
        if inspect.isawaitable(result):
            result = loop.run_until_complete(_awaited(result))
    except MemoryError:
        raise  # a worker reports it with its memory limit
    except (Exception, SystemExit) as exc:
        raise HandlerError(type(exc).__name__, str(exc)) from None
    if type(result) is not dict and callable(getattr(result, "asdict", None)):
        try:
            result = result.asdict()
        except Exception as exc:
            message = f"Unable to marshal response: {exc}"
            raise HandlerError("Runtime.MarshalError", message) from None
    return result, encode_response(result)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
