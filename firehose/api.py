"""The Firehose JSON 1.1 API on aiohttp: `POST /` dispatched on `X-Amz-Target`, and `/health`
(with telemetry: quotas on puts, and the metrics and status routes of firehose.status).

Only this module (and `http_server` for broken HTTP) turns our exceptions into Firehose's wire
shape `{"__type", "message"}`.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
import pybase64
from aiohttp import web

from firehose.auth import CALLER, Authenticator, authorize_body, stream_visible
from firehose.describe import describe
from firehose.errors import (
    FirehoseError,
    InvalidArgumentError,
    InvalidKMSResourceError,
    LogKeyError,
    NotAcceptingError,
    RequestTimeoutError,
    ResourceNotFoundError,
    SerializationError,
    ServiceUnavailableError,
    UnknownOperationError,
    ValidationError,
    WalError,
)
from firehose.http_direct import DirectAnswer
from firehose.http_server import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    BodyMemory,
    Direct,
    HttpLimits,
    Runner,
    answer_and_close,
    body_reservation,
    error_answer,
    error_response,
    first_line,
)
from firehose.logs import REQUEST_ID, STREAM_NAME
from firehose.quotas import REQUEST_REFUSED
from firehose.request_checks import (
    STREAM_TYPES,
    blob_repr,
    expect_member,
    limit_problems,
    stream_name_problems,
    violation,
)
from firehose.service_view import Streams
from firehose.status import StatusPages
from firehose.stream import DeliveryStream
from firehose.telemetry import Telemetry

if TYPE_CHECKING:
    from firehose.control_plane import ControlPlane

log = logging.getLogger(__name__)
# Always called as b64decode(data, None, True), i.e. validate=True: pybase64 parses keyword
# arguments slowly enough that the keyword costs 40% of decoding a 250-byte record.
b64decode = pybase64.b64decode

TARGET_PREFIX = "Firehose_20150804."
MAX_RECORD_BYTES = 1_024_000
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
THROTTLED_ENTRY = '{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}'
# The control-plane operations: served by a ControlPlane when the API has one.
NOT_YET = frozenset(
    {
        "CreateDeliveryStream",
        "DeleteDeliveryStream",
        "UpdateDestination",
        "TagDeliveryStream",
        "UntagDeliveryStream",
        "ListTagsForDeliveryStream",
        "StartDeliveryStreamEncryption",
        "StopDeliveryStreamEncryption",
    }
)


class _BatchRecord(msgspec.Struct, gc=False):
    Data: bytes  # base64 in the JSON


class _Batch(msgspec.Struct, gc=False):
    """The members of a PutRecordBatch body that `_fast_batch` reads; others are ignored,
    as the full parse ignores them."""

    DeliveryStreamName: str
    Records: list[_BatchRecord]


_BATCH_DECODER = msgspec.json.Decoder(_Batch)
_LAST_DIGITS = [f"{low:03d}" for low in range(1000)]


# A handler answers a dict, or bytes already rendered as JSON.
Handler = Callable[["FirehoseApi", dict[str, Any]], Awaitable[dict[str, Any] | bytes]]


def _body_received(request: web.Request) -> bool:
    """Whether the whole body is already buffered (the common case for bodies of a few
    hundred KiB on a fast link)."""
    length = request.content_length
    content = request.content
    return length is not None and content.is_eof() and content.total_bytes >= length


def _too_large(operation: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "Records size exceeds 4 MB limit"
        if operation == "PutRecordBatch"
        else f"Request body exceeds {MAX_BODY_BYTES} bytes"
    )


def _decode_one(item: Any, path: str) -> bytes | str:
    """The record's bytes, or a validation problem; bad JSON shapes raise SerializationError."""
    if not isinstance(item, dict):
        raise SerializationError(f"{path} must be a JSON object")
    data = item.get("Data")
    if data is None:
        return violation(None, f"{path}.data", "Member must not be null")
    if not isinstance(data, str):
        raise SerializationError(f"{path}.data must be a base64 string")
    try:
        return b64decode(data, None, True)
    except (binascii.Error, ValueError) as exc:
        raise SerializationError(f"{path}.data is not valid base64: {exc}") from None


def _decode_records(items: list[Any], path: str) -> tuple[list[bytes], list[str]]:
    """Decode every record's base64 once; (records, validation problems)."""
    problems: list[str] = []
    try:
        records = [b64decode(item["Data"], None, True) for item in items]
    except Exception:
        # The slow path only runs for a bad request, to say exactly what is wrong where.
        records = []
        for index, item in enumerate(items, 1):
            member = f"{path}.{index}.member" if path == "records" else path
            decoded = _decode_one(item, member)
            if isinstance(decoded, str):
                problems.append(decoded)
                decoded = b""  # keeps the indexes of the size check below right
            records.append(decoded)
    if records and max(map(len, records)) > MAX_RECORD_BYTES:
        for index, record in enumerate(records, 1):
            if len(record) > MAX_RECORD_BYTES:
                member = f"{path}.{index}.member.data" if path == "records" else f"{path}.data"
                problems.append(
                    violation(
                        blob_repr(len(record)),
                        member,
                        f"Member must have length less than or equal to {MAX_RECORD_BYTES}",
                    )
                )
    return records, problems


def _fast_batch(raw: bytes | memoryview) -> tuple[str, list[bytes]] | None:
    """(stream name, records) of a PutRecordBatch body that passes every check
    `put_record_batch` makes of it; None for any other body, which then takes the full JSON
    parse and its exact answer.

    One msgspec pass decodes the JSON and every record's base64 while holding the GIL. pybase64
    lets the GIL go and takes it back for each record: with the converter's threads busy, that
    cost the event loop about 0.7 µs a record.
    """
    try:
        body = _BATCH_DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    records = [record.Data for record in body.Records]
    if not 1 <= len(records) <= MAX_BATCH_RECORDS or max(map(len, records)) > MAX_RECORD_BYTES:
        return None
    if stream_name_problems(body.DeliveryStreamName):
        return None
    return body.DeliveryStreamName, records


def joined_seqs(separator: str, first: int, count: int) -> str:
    """The decimal seqs `first` .. `first + count - 1` joined by `separator`.

    Seqs that share all but their last three digits are joined in one call over a table of
    those digits: str() of each of a batch's 500 seqs costs the answer about 0.1 µs a record.
    """
    blocks = []
    seq, end = first, first + count
    while seq < end:
        high, low = divmod(seq, 1000)
        stop = min(end, (high + 1) * 1000)
        if high == 0:  # no leading digits: the last three lose their zeros
            blocks.append(separator.join(map(str, range(seq, stop))))
        else:
            head = str(high)
            blocks.append(head + (separator + head).join(_LAST_DIGITS[low : stop - high * 1000]))
        seq = stop
    return separator.join(blocks)


def _parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SerializationError("The request body must be a JSON object")
    return body


class FirehoseApi:
    """Request handling; one instance per service."""

    def __init__(
        self,
        service: Streams,
        limits: HttpLimits | None = None,
        telemetry: Telemetry | None = None,
        auth: Authenticator | None = None,
        control: ControlPlane | None = None,
    ) -> None:
        self.service = service
        self.control = control
        self.limits = limits or HttpLimits()
        self.telemetry = telemetry
        self._quotas = telemetry.quotas if telemetry is not None else None
        self._api_metrics = telemetry.metrics.api if telemetry is not None else None
        self.auth = auth  # None: every request is accepted unsigned
        self.body_memory = BodyMemory(self.limits.max_request_memory)
        self._id_prefix = os.urandom(6).hex()
        base = uuid.uuid4()
        self._request_head = str(base)[:23]  # 8-4-4-4 of a random uuid4
        self._request_base = int(str(base)[24:], 16)
        self._requests = 0

    # -- plumbing -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self.handle)
        app.router.add_get("/health", self.health)
        if self.telemetry is not None:
            StatusPages(self.service, self.telemetry).add_routes(app)
        return app

    def runner(self) -> web.AppRunner:
        """The app with every connection limit applied; give it to a `web.TCPSite`. Without
        signature checking, plain PutRecordBatch requests take the direct path."""
        direct = (
            None
            if self.auth is not None
            else Direct(self.answer_direct, self.body_memory, self.limits.body_timeout)
        )
        return Runner(
            self.app(),
            header_timeout=self.limits.header_timeout,
            direct=direct,
            access_log=None,
            keepalive_timeout=self.limits.keepalive_timeout,
        )

    async def health(self, request: web.Request) -> web.Response:
        streams = {name: stream.health() for name, stream in self.service.streams.items()}
        if not self.service.ready:
            status = "starting"
        elif all(stream.healthy for stream in self.service.streams.values()):
            status = "ok"
        else:
            status = "degraded"
        return web.json_response(
            {"status": status, "streams": streams},
            status=200 if self.service.ready else 503,
            dumps=lambda value: orjson.dumps(value).decode(),
        )

    def _request_id(self) -> str:
        """A uuid-shaped request id, unique per instance: a random base and a counter are 5x
        cheaper than uuid4() per request."""
        self._requests += 1
        tail = f"{self._request_base + self._requests:012x}"[-12:]
        return f"{self._request_head}-{tail}"

    def _start_request(self) -> str:
        """A new request id, set with no stream yet for the request's logs and metrics: set for
        every request, as a connection's requests may share one task's context."""
        request_id = self._request_id()
        REQUEST_ID.set(request_id)
        STREAM_NAME.set(None)
        return request_id

    @staticmethod
    def _logged_failure(exc: Exception, label: str) -> FirehoseError:
        """The error to answer `exc` with, logged: a Firehose error of 5xx as a warning, any
        other exception (a bug) with its traceback, answered as an internal error."""
        if isinstance(exc, FirehoseError):
            if exc.status >= 500:
                log.warning("%s: %s: %s", label, exc.code, exc.message)
            return exc
        log.error("%s failed", label, exc_info=exc)
        return FirehoseError("We encountered an internal error.")

    async def handle(self, request: web.Request) -> web.Response:
        request_id = self._start_request()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        metrics = self._api_metrics
        if metrics is None:
            return await self._answer(request, request_id, operation, target)
        started = time.perf_counter()
        try:
            return await self._answer(request, request_id, operation, target)
        finally:
            metrics.observe(operation, STREAM_NAME.get(), time.perf_counter() - started)

    async def _answer(
        self, request: web.Request, request_id: str, operation: str, target: str
    ) -> web.Response:
        caller_set = None
        try:
            signed = self.auth.check(request) if self.auth is not None else None
            handler = self._handler(operation, target)
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise _too_large(operation)
            async with self.body_memory.hold(body_reservation(request)):
                raw = await self._read_body(request, operation)
                caller = None
                if signed is not None and self.auth is not None:
                    caller = await self.auth.verify(signed, request, raw)
                    caller_set = CALLER.set(caller)
                batch = _fast_batch(raw) if operation == "PutRecordBatch" else None
                result: dict[str, Any] | bytes
                if batch is not None:
                    if caller is not None:
                        caller.authorize(operation, batch[0])
                    result = await self._put_batch(*batch)
                else:
                    body = _parse_json(raw)
                    authorize_body(caller, operation, body)
                    result = await handler(self, body)
        except ConnectionError:
            log.warning("%s: the client disconnected before sending its whole request", operation)
            return self._error(FirehoseError("The client disconnected."), request_id)
        except FirehoseError as exc:
            self._logged_failure(exc, operation or target)
            if isinstance(exc, RequestTimeoutError) or request.content.exception() is not None:
                return await answer_and_close(request, self._error(exc, request_id))
            return self._error(exc, request_id)
        except Exception as exc:
            return self._error(self._logged_failure(exc, operation), request_id)
        finally:
            if caller_set is not None:
                CALLER.reset(caller_set)
        return web.Response(
            body=result if isinstance(result, bytes) else orjson.dumps(result),
            content_type=CONTENT_TYPE,
            headers={"x-amzn-RequestId": request_id},
        )

    async def answer_direct(self, raw: memoryview) -> DirectAnswer | None:
        """A PutRecordBatch body from the direct path (no signatures are checked), answered as
        `handle` answers it; None for a body only the full parse answers exactly."""
        batch = _fast_batch(raw)
        if batch is None:
            return None
        request_id = self._start_request()
        started = time.perf_counter()
        try:
            body = await self._put_batch(*batch)
        except Exception as exc:
            return error_answer(self._logged_failure(exc, "PutRecordBatch"), request_id)
        finally:
            if self._api_metrics is not None:
                self._api_metrics.observe(
                    "PutRecordBatch", STREAM_NAME.get(), time.perf_counter() - started
                )
        return DirectAnswer(200, body, (("x-amzn-RequestId", request_id),))

    def _handler(self, operation: str, target: str) -> Handler:
        handler = OPERATIONS.get(operation)
        if handler is not None:
            return handler
        if operation in NOT_YET and self.control is not None:
            control = self.control
            control_operation = control.operations[operation]

            async def change(api: FirehoseApi, body: dict[str, Any]) -> dict[str, Any]:
                api._check_ready()  # no stream is opened or closed during start or shutdown
                name = body.get("DeliveryStreamName")
                if isinstance(name, str) and name in control.entries:
                    STREAM_NAME.set(name)  # labels the call's metric and log lines
                return await control_operation(body)

            return change
        if operation in NOT_YET:
            raise InvalidArgumentError(
                f"{operation} is not supported by this version yet: delivery streams are "
                "defined in the YAML files given to `firehose serve --config`."
            )
        raise UnknownOperationError(f"Unknown operation {target!r}.")

    async def _read_body(self, request: web.Request, operation: str) -> bytes:
        """The body; a body slower than the body timeout is refused."""
        try:
            if _body_received(request):
                raw = await request.read()  # nothing left to wait for: no timer needed
            else:
                async with asyncio.timeout(self.limits.body_timeout):
                    raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(operation) from None
        except TimeoutError:
            raise RequestTimeoutError(
                f"The request body did not arrive within {self.limits.body_timeout:g} seconds."
            ) from None
        except web.RequestPayloadError as exc:
            # A Content-Encoding that does not decode, or a body cut short.
            reason = first_line(str(getattr(exc.__cause__, "message", "") or exc))
            raise SerializationError(f"The request body cannot be read: {reason}") from None
        return raw

    @staticmethod
    def _error(exc: FirehoseError, request_id: str) -> web.Response:
        return error_response(exc, request_id)

    def _stream(self, name: str) -> DeliveryStream:
        stream = self.service.streams.get(name)
        if stream is None:
            raise self._not_found(name)
        STREAM_NAME.set(name)
        return stream

    def _not_found(self, name: str) -> ResourceNotFoundError:
        return ResourceNotFoundError(
            f"Firehose {name} not found under account {self.service.account_id}."
        )

    def _writable_stream(self, name: str) -> DeliveryStream:
        """A stream producers may put to: a Kinesis-sourced one reads its data stream only."""
        stream = self._stream(name)
        if stream.config.type != "DirectPut":
            raise InvalidArgumentError(
                f"This operation is not permitted on {stream.config.type} delivery stream type."
            )
        return stream

    def _record_id_prefix(self, stream: DeliveryStream) -> str:
        return f"{self._id_prefix}{stream.name}:"

    def _batch_response(
        self, stream: DeliveryStream, first_seq: int, taken: int, failed: int
    ) -> bytes:
        """The PutRecordBatch answer, rendered in one join: 500 dicts cost 10x as much."""
        prefix = self._record_id_prefix(stream)
        ids = joined_seqs(f'"}},{{"RecordId":"{prefix}', first_seq, taken)
        entries = [f'{{"RecordId":"{prefix}{ids}"}}'] if taken else []
        entries += [THROTTLED_ENTRY] * failed
        encrypted = "true" if stream.encrypted else "false"
        return (
            f'{{"FailedPutCount":{failed},"Encrypted":{encrypted},"RequestResponses":['
            f"{','.join(entries)}]}}"
        ).encode()

    async def _put(self, stream: DeliveryStream, records: list[bytes]) -> tuple[int, int]:
        """Put into `stream`, turning back-pressure and log trouble into a retriable answer; a
        stream whose runtime is being replaced takes the put once the new one runs."""
        try:
            first_seq, taken = await stream.put(records)
        except NotAcceptingError as exc:
            if self.control is None:
                raise ServiceUnavailableError(str(exc)) from exc
            current = await self.control.registry.current(stream.name)
            if current is None:  # deleted meanwhile
                raise self._not_found(stream.name) from None
            if current is stream:  # closing for good (shutdown), or a swap that took too long
                raise ServiceUnavailableError(str(exc)) from exc
            return await self._put(current, records)
        except LogKeyError as exc:
            if self._api_metrics is not None:
                self._api_metrics.key_refused(stream.name, exc.kms_code)
            raise InvalidKMSResourceError(
                f"The encryption key of delivery stream {stream.name} cannot be used "
                f"({exc.kms_code}).",
                exc.kms_code,
            ) from exc
        except WalError as exc:
            raise ServiceUnavailableError(
                "The delivery stream cannot store records right now."
            ) from exc
        if taken == 0:
            raise ServiceUnavailableError("Slow down.")
        return first_seq, taken

    # -- operations -----------------------------------------------------------------------

    async def put_record(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        record = expect_member(body, "Record", dict)
        problems = stream_name_problems(name)
        records: list[bytes] = []
        if record is None:
            problems.append(violation(None, "record", "Member must not be null"))
        else:
            records, record_problems = _decode_records([record], "record")
            problems += record_problems
        if problems:
            raise ValidationError.from_problems(problems)
        stream = self._writable_stream(name)
        self._check_ready()
        size = len(records[0])
        if self._admitted(stream, records, size) == 0:
            raise ServiceUnavailableError("Slow down.")
        first_seq, _ = await self._put(stream, records)
        if self._api_metrics is not None:
            self._api_metrics.put(stream.name, batch=False, records=1, size=size)
        return {
            "RecordId": f"{self._record_id_prefix(stream)}{first_seq}",
            "Encrypted": stream.encrypted,
        }

    async def put_record_batch(self, body: dict[str, Any]) -> bytes:
        name = expect_member(body, "DeliveryStreamName", str)
        items = expect_member(body, "Records", list)
        problems = stream_name_problems(name)
        records: list[bytes] = []
        if items is None:
            problems.append(violation(None, "records", "Member must not be null"))
        elif not items:
            problems.append(
                violation("[]", "records", "Member must have length greater than or equal to 1")
            )
        elif len(items) > MAX_BATCH_RECORDS:
            problems.append(
                violation(
                    f"[{len(items)} records]",
                    "records",
                    f"Member must have length less than or equal to {MAX_BATCH_RECORDS}",
                )
            )
        else:
            records, record_problems = _decode_records(items, "records")
            problems += record_problems
        if problems:
            raise ValidationError.from_problems(problems)
        return await self._put_batch(name, records)

    async def _put_batch(self, name: str, records: list[bytes]) -> bytes:
        """PutRecordBatch once the stream name and each record have passed validation."""
        size = sum(map(len, records))
        if size > MAX_BATCH_BYTES:
            raise InvalidArgumentError("Records size exceeds 4 MB limit")
        stream = self._writable_stream(name)
        self._check_ready()
        admitted = self._admitted(stream, records, size)
        if admitted == 0:  # over a quota: every entry throttled
            return self._batch_response(stream, 0, 0, len(records))
        first_seq, taken = await self._put(
            stream, records if admitted == len(records) else records[:admitted]
        )
        if self._api_metrics is not None:
            self._api_metrics.put(stream.name, batch=True, records=len(records), size=size)
        return self._batch_response(stream, first_seq, taken, len(records) - taken)

    def _admitted(self, stream: DeliveryStream, records: list[bytes], size: int) -> int:
        """How many leading records the stream's quota lets in now; the rest are throttled.
        Over the requests-per-second quota none is (PutRecord then answers 503, PutRecordBatch
        200 with every entry throttled, as over the other quotas)."""
        quota = None if self._quotas is None else self._quotas.get(stream.name)
        if quota is None:
            return len(records)
        admitted = quota.admit(records, size)
        if admitted == REQUEST_REFUSED:
            admitted = 0
        stream.counters.throttled_records += len(records) - admitted
        return admitted

    async def describe_delivery_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        limit = expect_member(body, "Limit", int)
        start = expect_member(body, "ExclusiveStartDestinationId", str)
        problems = stream_name_problems(name)
        problems += limit_problems(limit)
        if problems:
            raise ValidationError.from_problems(problems)
        if self.control is not None:
            description = self.control.describe(name, start)
            STREAM_NAME.set(name)  # only once found: a metric label per existing stream
            return {"DeliveryStreamDescription": description}
        stream = self._stream(name)
        return {
            "DeliveryStreamDescription": describe(
                stream.config,
                region=self.service.region,
                account_id=self.service.account_id,
                created_at=self.service.started_at,
            )
        }

    async def list_delivery_streams(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = expect_member(body, "Limit", int)
        start = expect_member(body, "ExclusiveStartDeliveryStreamName", str)
        kind = expect_member(body, "DeliveryStreamType", str)
        problems = []
        problems += limit_problems(limit)
        if kind is not None and kind not in STREAM_TYPES:
            problems.append(
                violation(
                    kind,
                    "deliveryStreamType",
                    f"Member must satisfy enum value set: [{', '.join(STREAM_TYPES)}]",
                )
            )
        if start is not None:
            problems += stream_name_problems(start, "exclusiveStartDeliveryStreamName")
        if problems:
            raise ValidationError.from_problems(problems)
        if self.control is not None:
            every = self.control.names(kind)
        else:
            every = sorted(
                name
                for name, stream in self.service.streams.items()
                if kind is None or stream.config.type == kind
            )
        names = [name for name in every if (start is None or name > start) and stream_visible(name)]
        limit = limit or 10
        return {"DeliveryStreamNames": names[:limit], "HasMoreDeliveryStreams": len(names) > limit}

    def _check_ready(self) -> None:
        if not self.service.ready:
            raise ServiceUnavailableError("The service is starting; retry shortly.")


OPERATIONS: dict[str, Handler] = {
    "PutRecord": FirehoseApi.put_record,
    "PutRecordBatch": FirehoseApi.put_record_batch,
    "DescribeDeliveryStream": FirehoseApi.describe_delivery_stream,
    "ListDeliveryStreams": FirehoseApi.list_delivery_streams,
}
