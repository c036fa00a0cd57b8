"""HTTP endpoint destination: one POST per batch, in Firehose's request and response contract.

`deliver` makes one attempt and maps every way it can fail to Firehose's `HttpEndpoint.*` codes;
the stream retries by the section's policy (the request id stays the same, so an endpoint can
drop a retried duplicate) and files what is left at the window's end as `http-endpoint-failed`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from concurrent.futures import Executor
from typing import Any, NoReturn

import aiohttp
import orjson

from destinations.http_body import encode_records, request_body
from firehose.batch import Batch
from firehose.config import HttpEndpointDestination as HttpEndpointSection
from firehose.destination import DELIVERED, DeliveryResult, DestinationCounters
from firehose.errors import DeliveryError

OUTPUT_TYPE = "http-endpoint-failed"
PROTOCOL_VERSION = "1.0"
MAX_RESPONSE_BYTES = 1024 * 1024
# Bodies past this are built in the encoder pool, so the event loop keeps serving puts.
ENCODE_OFF_LOOP_BYTES = 256 * 1024
# The most of an endpoint's error answer kept in the error message.
MAX_MESSAGE_CHARS = 4096
# Request ids are derived from the batch's object id, which a retry and a restart keep.
_REQUEST_ID_NAMESPACE = uuid.UUID("5b0c6a52-4c1e-4f0e-9a57-2f3b8d0f6e11")


def request_id_of(batch: Batch) -> str:
    """The same uuid for every attempt at `batch`, across restarts too."""
    return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, batch.object_id))


class HttpDestination:
    """POSTs each batch to `EndpointConfiguration.Url` on one pooled connection."""

    kind = "HttpEndpoint"

    def __init__(
        self,
        section: HttpEndpointSection,
        *,
        source_arn: str,
        encoder: Executor | None = None,
    ) -> None:
        endpoint = section.endpoint_configuration
        self.url = endpoint.url
        self.name = endpoint.name
        self.gzip = section.request_configuration.content_encoding == "GZIP"
        self.timeout = section.response_timeout_seconds
        self.target = f"{self.url} ({self.name})" if self.name else self.url
        self.counters = DestinationCounters(self.kind)
        self._encoder = encoder
        self._headers = _static_headers(section, source_arn)
        self._details = {"httpEndpoint": {"url": self.url, "name": self.name}}
        self._session: aiohttp.ClientSession | None = None
        # The records part of the batch last tried: its retries reuse it.
        self._encoded: tuple[str, bytes] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),  # the stream sends one request at a time
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),  # an encoded answer is refused anyway
            raise_for_status=False,
        )

    async def deliver(self, batch: Batch) -> DeliveryResult:
        assert self._session is not None, "start() first"
        request_id = request_id_of(batch)
        body = await self._body(batch, request_id)
        headers = {**self._headers, "X-Amz-Firehose-Request-Id": request_id}
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await self._check(response, request_id)
        except DeliveryError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._fail(*_transport_failure(exc))
        self._encoded = None
        return DELIVERED

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- request --------------------------------------------------------------------------

    async def _body(self, batch: Batch, request_id: str) -> bytes:
        timestamp_ms = time.time_ns() // 1_000_000
        cached = self._encoded
        if batch.size_bytes < ENCODE_OFF_LOOP_BYTES:
            if cached is None or cached[0] != batch.object_id:
                cached = self._encoded = (batch.object_id, encode_records(batch))
            return request_body(cached[1], request_id, timestamp_ms, gzip=self.gzip)
        loop = asyncio.get_running_loop()
        if cached is None or cached[0] != batch.object_id:
            records = await loop.run_in_executor(self._encoder, encode_records, batch)
            cached = self._encoded = (batch.object_id, records)
        return await loop.run_in_executor(
            self._encoder, _body_of, cached[1], request_id, timestamp_ms, self.gzip
        )

    # -- response -------------------------------------------------------------------------

    async def _check(self, response: aiohttp.ClientResponse, request_id: str) -> None:
        """Returns only for a 200 whose body is the acknowledgement of `request_id`."""
        status = response.status
        if status != 200:
            text = (await _read_limited(response)).decode(errors="replace")
            message = _endpoint_message(text)
            if 300 <= status < 400:
                location = response.headers.get("Location", "")
                message = f"redirect to {location!r} (redirects are not followed)"
            self._fail(
                "HttpEndpoint.DestinationException",
                f"The endpoint answered HTTP {status}: {message}",
                retriable=status != 413,
            )
        encoding = response.headers.get("Content-Encoding")
        if encoding:
            self._fail(
                "HttpEndpoint.InvalidResponseFromDestination",
                f"The response has Content-Encoding {encoding!r}; none is allowed",
            )
        declared = response.content_length
        if declared is not None and declared > MAX_RESPONSE_BYTES:
            self._response_too_large()
        raw = await _read_limited(response)
        if len(raw) > MAX_RESPONSE_BYTES:
            self._response_too_large()
        if response.content_type != "application/json":
            self._fail(
                "HttpEndpoint.InvalidResponseFromDestination",
                f"The response's Content-Type is {response.content_type!r}, not application/json",
            )
        problem = _acknowledgement_problem(raw, request_id)
        if problem:
            self._fail("HttpEndpoint.InvalidResponseFromDestination", problem)

    def _response_too_large(self) -> NoReturn:
        self._fail(
            "HttpEndpoint.ResponseTooLarge",
            f"The response is larger than {MAX_RESPONSE_BYTES} bytes",
        )

    def _fail(self, code: str, message: str, *, retriable: bool = True) -> NoReturn:
        raise DeliveryError(
            f"{code}: {message}",
            code=code,
            retriable=retriable,
            output_type=OUTPUT_TYPE,
            details=self._details,
        )


def _static_headers(section: HttpEndpointSection, source_arn: str) -> dict[str, str]:
    """The headers every request of this destination carries."""
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": PROTOCOL_VERSION,
        "X-Amz-Firehose-Source-Arn": source_arn,
    }
    access_key = section.endpoint_configuration.access_key
    if access_key is not None:
        headers["X-Amz-Firehose-Access-Key"] = access_key.get_secret_value()
    attributes = section.request_configuration.common_attributes
    if attributes:
        common = {a.attribute_name: a.attribute_value for a in attributes}
        headers["X-Amz-Firehose-Common-Attributes"] = orjson.dumps(
            {"commonAttributes": common}
        ).decode()
    if section.request_configuration.content_encoding == "GZIP":
        headers["Content-Encoding"] = "gzip"
    return headers


def _body_of(records: bytes, request_id: str, timestamp_ms: int, gzip: bool) -> bytes:
    return request_body(records, request_id, timestamp_ms, gzip=gzip)


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    """The body, but no more than one byte past the limit: an endless answer is not read."""
    parts: list[bytes] = []
    size = 0
    while size <= MAX_RESPONSE_BYTES:
        part = await response.content.read(MAX_RESPONSE_BYTES + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _endpoint_message(text: str) -> str:
    """The endpoint's `errorMessage` when it gave one in JSON, else its body as text."""
    try:
        answer: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("errorMessage"), str):
        text = answer["errorMessage"]
    return text[:MAX_MESSAGE_CHARS] or "(empty body)"


def _acknowledgement_problem(raw: bytes, request_id: str) -> str | None:
    """What is wrong with a 200's body, or None for `{"requestId": ours, "timestamp": int}`."""
    try:
        answer: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "The response body is not JSON"
    if not isinstance(answer, dict):
        return "The response body is not a JSON object"
    if answer.get("requestId") != request_id:
        return f"The response's requestId {answer.get('requestId')!r} is not {request_id!r}"
    timestamp = answer.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        return f"The response's timestamp {timestamp!r} is not an integer"
    return None


def _transport_failure(exc: BaseException) -> tuple[str, str]:
    """Firehose's code and a message for a request that got no usable answer."""
    if isinstance(exc, TimeoutError):
        return "HttpEndpoint.RequestTimeout", "The endpoint did not answer in time"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "HttpEndpoint.SSLHandshakeFailure", f"TLS failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "HttpEndpoint.ConnectionFailed", f"Could not connect: {exc}"
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientOSError
        | ConnectionResetError,
    ):
        return "HttpEndpoint.ConnectionReset", f"The connection was closed: {exc!r}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "HttpEndpoint.InvalidResponseFromDestination", f"Not a valid HTTP answer: {exc}"
    return "HttpEndpoint.ConnectionFailed", f"The request failed: {exc!r}"
