"""A real Lambda function, called through the Lambda API's Invoke (RequestResponse).

The endpoint is the standard AWS_ENDPOINT_URL_LAMBDA, else AWS_ENDPOINT_URL, else AWS's;
credentials come from the usual chain. botocore does not retry (one attempt per call): the
processor's NumberOfRetries loop is the only retry layer, so attemptsMade is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from transforms.lambda_contract import (
    FUNCTION_ERROR,
    FUNCTION_TIMED_OUT,
    INVOKE_ACCESS_DENIED,
    INVOKE_LIMIT_EXCEEDED,
    REQUEST_TOO_LARGE,
    RESOURCE_NOT_FOUND,
    InvokeError,
    PayloadInvoker,
)

# Lambda's error types that mean the caller may not invoke: not worth a retry.
_DENIED = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "KMSAccessDeniedException",
}


def lambda_endpoint() -> str | None:
    """The endpoint AWS's SDKs would use for Lambda, from the standard variables."""
    return os.environ.get("AWS_ENDPOINT_URL_LAMBDA") or os.environ.get("AWS_ENDPOINT_URL") or None


class AwsLambdaInvoker(PayloadInvoker):
    """Invokes one function ARN; one client per (region, endpoint), built at first use."""

    def __init__(self, arn: str, *, timeout: float) -> None:
        self._arn = arn
        self._region = arn.split(":")[3]
        self._timeout = timeout
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    async def _client(self) -> Any:
        key = (self._region, lambda_endpoint())
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = AioConfig(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=self._timeout + 5,  # our own timeout is the one that fires
                )
                client = await self._stack.enter_async_context(
                    get_session().create_client(
                        "lambda", region_name=key[0], endpoint_url=key[1], config=config
                    )
                )
                self._clients[key] = client
            return client

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        """The function's answer, or InvokeError with Firehose's code for what went wrong."""
        try:
            client = await self._client()
            async with asyncio.timeout(timeout):
                response = await client.invoke(
                    FunctionName=self._arn, InvocationType="RequestResponse", Payload=payload
                )
                body: bytes = await response["Payload"].read()
        except TimeoutError:
            raise InvokeError(
                FUNCTION_TIMED_OUT, f"No answer after {timeout:g} s.", retryable=True
            ) from None
        except ClientError as exc:
            raise _client_error(exc) from None
        except NoCredentialsError as exc:
            raise InvokeError(INVOKE_ACCESS_DENIED, f"{exc}.") from None
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise InvokeError(FUNCTION_TIMED_OUT, f"{exc}.", retryable=True) from None
        except (BotoCoreError, OSError) as exc:
            raise InvokeError("Lambda.ServiceException", f"{exc}.", retryable=True) from None
        if response.get("FunctionError"):
            raise InvokeError(FUNCTION_ERROR, _function_error(body), retryable=True)
        return body

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


def _function_error(body: bytes) -> str:
    """Lambda's error document ({"errorType", "errorMessage"}) in one line."""
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(error, dict) and "errorMessage" in error:
        kind = error.get("errorType")
        return f"{kind}: {error['errorMessage']}." if kind else f"{error['errorMessage']}."
    return body[:500].decode("utf-8", "replace")


def _client_error(exc: Any) -> InvokeError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    detail = f"{code}: {error.get('Message', '')}".rstrip(": ") + "."
    if code == "ResourceNotFoundException":
        return InvokeError(RESOURCE_NOT_FOUND, detail)
    if code == "TooManyRequestsException":
        return InvokeError(INVOKE_LIMIT_EXCEEDED, detail, retryable=True)
    if code in _DENIED or "AccessDenied" in code:
        return InvokeError(INVOKE_ACCESS_DENIED, detail)
    if code in ("RequestTooLargeException", "RequestEntityTooLargeException"):
        return InvokeError(REQUEST_TOO_LARGE, detail)
    return InvokeError(f"Lambda.{code}", detail, retryable=True)
