"""SigV4 verification and per-key allow-lists, against the real aiohttp app with keys from a real
credentials file; requests signed by botocore (boto3 clients, or `SigV4Auth` for raw bodies)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import botocore.exceptions
import orjson
import pytest
from aiohttp.test_utils import TestServer

from firehose.api import FirehoseApi, _fast_batch
from firehose.auth import HASH_INLINE_BYTES, MAX_CLOCK_SKEW, SIGNATURE_MISMATCH, Authenticator
from firehose.credentials import load_credentials
from firehose.stream import DeliveryStream
from firehose.testing.service_process import firehose_client
from firehose.testing.signing import signed_headers
from tests.factories import memory_stream
from tests.test_api import FakeService

ACCOUNT = "123456789012"
CREDENTIALS = """\
[default]
aws_access_key_id = AKIDWRITER
aws_secret_access_key = writer/secret+key

[clicks]
aws_access_key_id = AKIDCLICKS
aws_secret_access_key = clicks-secret
firehose_streams = events
firehose_actions = PutRecord, PutRecordBatch, Describe*

[logs-reader]
aws_access_key_id = AKIDLOGS
aws_secret_access_key = logs-secret
firehose_streams = logs-*

[settings-only]
region = eu-west-1
"""
WRITER = ("AKIDWRITER", "writer/secret+key")
CLICKS = ("AKIDCLICKS", "clicks-secret")
LOGS = ("AKIDLOGS", "logs-secret")
INVALID_TOKEN = "The security token included in the request is invalid."


@dataclass
class SecuredApi:
    url: str
    streams: dict[str, DeliveryStream]
    session: aiohttp.ClientSession
    clock_offset: list[float]  # seconds added to the server's clock

    async def post(
        self, operation: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.post(self.url, data=body, headers=headers or {}) as response:
            return response.status, orjson.loads(await response.read())

    async def signed(
        self,
        operation: str,
        body: Any,
        key: tuple[str, str] = WRITER,
        *,
        raw: bytes | None = None,
        tamper: Callable[[bytes, dict[str, str]], bytes] | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else orjson.dumps(body)
        headers = signed_headers(
            self.url, operation, data, key_id=key[0], secret=key[1], extra=extra
        )
        if tamper is not None:
            data = tamper(data, headers)
        return await self.post(operation, data, headers)

    def boto(self, key: tuple[str, str] = WRITER) -> Any:
        return firehose_client(self.url, *key)

    def taken(self, name: str) -> int:
        """Records stream `name` acknowledged (in its log), delivered or not."""
        return self.streams[name].counters.incoming_records


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[SecuredApi]:
    credentials = tmp_path / "credentials"
    credentials.write_text(CREDENTIALS)
    service = FakeService(account_id=ACCOUNT)
    for name in ("events", "another", "logs-app"):
        stream, _ = memory_stream(tmp_path / name, name=name)
        service.streams[name] = stream
        await stream.open()
    offset = [0.0]
    auth = Authenticator(
        load_credentials(credentials),
        region="us-east-1",
        account_id=ACCOUNT,
        clock=lambda: time.time() + offset[0],
    )
    server = TestServer(FirehoseApi(service, auth=auth).app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield SecuredApi(str(server.make_url("/")), service.streams, session, offset)
    await server.close()
    for stream in service.streams.values():
        await stream.close(timeout=1)


def batch(name: str, *records: bytes) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "Records": [{"Data": base64.b64encode(r).decode()} for r in records],
    }


def assert_error(answer: tuple[int, Any], status: int, code: str, message: str) -> None:
    assert answer == (status, {"__type": code, "message": message})


def boto_error(call: Callable[[], Any]) -> dict[str, Any]:
    """The error code, message and HTTP status botocore parsed from a refused call."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response: dict[str, Any] = raised.value.response
    return {
        "code": response["Error"]["Code"],
        "message": response["Error"]["Message"],
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


# -- who may call ----------------------------------------------------------------------------


async def test_a_boto3_client_with_a_key_of_the_file_works(secured: SecuredApi) -> None:
    def produce() -> None:
        client = secured.boto()
        answer = client.put_record_batch(
            DeliveryStreamName="events", Records=[{"Data": b"%d\n" % i} for i in range(100)]
        )
        assert answer["FailedPutCount"] == 0
        client.put_record(DeliveryStreamName="events", Record={"Data": b"one\n"})
        names = client.list_delivery_streams()["DeliveryStreamNames"]
        assert names == ["another", "events", "logs-app"]
        described = client.describe_delivery_stream(DeliveryStreamName="events")
        assert described["DeliveryStreamDescription"]["DeliveryStreamName"] == "events"

    await asyncio.to_thread(produce)
    assert secured.taken("events") == 101


async def test_refusals_have_aws_codes_statuses_and_words(secured: SecuredApi) -> None:
    def refused() -> list[dict[str, Any]]:
        put = {"DeliveryStreamName": "events", "Record": {"Data": b"x"}}
        return [
            boto_error(lambda: secured.boto(("AKIDWRITER", "wrong")).put_record(**put)),
            boto_error(lambda: secured.boto(("AKIDNOBODY", "x")).put_record(**put)),
        ]

    wrong_secret, unknown_key = await asyncio.to_thread(refused)
    assert wrong_secret == {
        "code": "InvalidSignatureException",
        "message": SIGNATURE_MISMATCH,
        "status": 400,
    }
    assert unknown_key == {
        "code": "UnrecognizedClientException",
        "message": INVALID_TOKEN,
        "status": 400,
    }
    assert secured.taken("events") == 0


async def test_unsigned_requests_are_refused_before_anything_else(secured: SecuredApi) -> None:
    for target in ("PutRecordBatch", "NoSuchOperation"):
        answer = await secured.post(
            target,
            orjson.dumps(batch("events", b"x")),
            {"X-Amz-Target": f"Firehose_20150804.{target}"},
        )
        assert_error(
            answer, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    assert secured.taken("events") == 0


async def test_health_needs_no_signature(secured: SecuredApi) -> None:
    async with secured.session.get(secured.url + "health") as response:
        assert response.status == 200


async def test_a_body_changed_after_signing_is_refused(secured: SecuredApi) -> None:
    tamper = replace_record(b"pay 10\n", b"pay 99\n")
    for body in (batch("events", b"pay 10\n"), {**batch("events", b"pay 10\n"), "x": 1}):
        answer = await secured.signed("PutRecordBatch", body, tamper=tamper)
        assert_error(answer, 400, "InvalidSignatureException", SIGNATURE_MISMATCH)
    assert secured.taken("events") == 0


async def test_a_signed_header_changed_after_signing_is_refused(secured: SecuredApi) -> None:
    def other_operation(body: bytes, headers: dict[str, str]) -> bytes:
        headers["X-Amz-Target"] = "Firehose_20150804.PutRecord"
        return body

    answer = await secured.signed("PutRecordBatch", batch("events", b"x"), tamper=other_operation)
    assert_error(answer, 400, "InvalidSignatureException", SIGNATURE_MISMATCH)


async def test_a_content_hash_header_must_be_the_bodys(secured: SecuredApi) -> None:
    body = orjson.dumps(batch("events", b"hashed\n"))
    right = {"X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest()}
    status, answer = await secured.signed("PutRecordBatch", None, raw=body, extra=right)
    assert status == 200 and answer["FailedPutCount"] == 0
    for sent in (hashlib.sha256(b"other").hexdigest(), "UNSIGNED-PAYLOAD"):
        wrong = {"X-Amz-Content-Sha256": sent}
        answer = await secured.signed("PutRecordBatch", None, raw=body, extra=wrong)
        assert_error(answer, 400, "InvalidSignatureException", SIGNATURE_MISMATCH)


def replace_record(old: bytes, new: bytes) -> Callable[[bytes, dict[str, str]], bytes]:
    """A tamper that swaps one record's base64 for another's after signing."""

    def tamper(body: bytes, headers: dict[str, str]) -> bytes:
        changed = body.replace(base64.b64encode(old), base64.b64encode(new))
        assert changed != body
        return changed

    return tamper


async def test_a_large_body_is_verified_too(secured: SecuredApi) -> None:
    records = [b"%07d" % i + b"r" * 8000 + b"\n" for i in range(499)] + [b"last one\n"]
    assert len(orjson.dumps(batch("events", *records))) > 4 * HASH_INLINE_BYTES  # off the loop
    status, answer = await secured.signed("PutRecordBatch", batch("events", *records))
    assert status == 200 and answer["FailedPutCount"] == 0
    tamper = replace_record(b"last one\n", b"LAST ONE\n")
    tampered = await secured.signed("PutRecordBatch", batch("events", *records), tamper=tamper)
    assert_error(tampered, 400, "InvalidSignatureException", SIGNATURE_MISMATCH)
    assert secured.taken("events") == 500


@pytest.mark.parametrize("direction", [-1, 1])
async def test_the_clock_may_be_off_by_up_to_fifteen_minutes(
    secured: SecuredApi, direction: int
) -> None:
    secured.clock_offset[0] = direction * (MAX_CLOCK_SKEW.total_seconds() - 60)
    status, _ = await secured.signed("PutRecordBatch", batch("events", b"ok\n"))
    assert status == 200


async def test_an_old_signature_has_expired(secured: SecuredApi) -> None:
    secured.clock_offset[0] = MAX_CLOCK_SKEW.total_seconds() + 60  # the request is 16 min old
    status, answer = await secured.signed("PutRecordBatch", batch("events", b"late\n"))
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    message = answer["message"]
    assert message.startswith("Signature expired: ") and message.endswith(" - 15 min.)")
    signed_at, _, rest = message.removeprefix("Signature expired: ").partition(
        " is now earlier than "
    )
    earliest, now = rest.removesuffix(" - 15 min.)").split(" (")
    assert signed_at < earliest < now
    assert secured.taken("events") == 0


async def test_a_signature_from_the_future_is_not_yet_current(secured: SecuredApi) -> None:
    secured.clock_offset[0] = -(MAX_CLOCK_SKEW.total_seconds() + 60)
    status, answer = await secured.signed("PutRecordBatch", batch("events", b"early\n"))
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert answer["message"].startswith("Signature not yet current: ")
    assert answer["message"].endswith(" + 15 min.)")


# -- malformed signatures --------------------------------------------------------------------


def _drop_signature(body: bytes, headers: dict[str, str]) -> bytes:
    headers["Authorization"] = headers["Authorization"].split(", Signature=")[0]
    return body


def _drop_date(body: bytes, headers: dict[str, str]) -> bytes:
    del headers["X-Amz-Date"]
    return body


def _other_scheme(body: bytes, headers: dict[str, str]) -> bytes:
    headers["Authorization"] = "Bearer abc"
    return body


@pytest.mark.parametrize(
    ("tamper", "contains"),
    [
        (_drop_signature, "Authorization header requires 'Signature' parameter."),
        (_other_scheme, "Authorization header requires 'Credential' parameter."),
        (_drop_date, "requires existence of a valid 'X-Amz-Date' header"),
    ],
)
async def test_incomplete_signatures(
    secured: SecuredApi, tamper: Callable[[bytes, dict[str, str]], bytes], contains: str
) -> None:
    status, answer = await secured.signed("PutRecordBatch", batch("events", b"x"), tamper=tamper)
    assert (status, answer["__type"]) == (400, "IncompleteSignatureException")
    assert contains in answer["message"]


def _rewrite(old: str, new: str) -> Callable[[bytes, dict[str, str]], bytes]:
    """A tamper that edits the Authorization header after signing."""

    def tamper(body: bytes, headers: dict[str, str]) -> bytes:
        assert old in headers["Authorization"]
        headers["Authorization"] = headers["Authorization"].replace(old, new)
        return body

    return tamper


SCOPED_ELSEWHERE = [
    (_rewrite("/us-east-1/", "/eu-west-1/"), "to a valid region, not 'eu-west-1'."),
    (_rewrite("/firehose/", "/kinesis/"), "to correct service: 'firehose'."),
    (_rewrite("/aws4_request", "/aws5"), "with a valid terminator: 'aws4_request', not 'aws5'."),
]


@pytest.mark.parametrize(("tamper", "scoped"), SCOPED_ELSEWHERE)
async def test_signatures_scoped_elsewhere(
    secured: SecuredApi, tamper: Callable[[bytes, dict[str, str]], bytes], scoped: str
) -> None:
    answer = await secured.signed("PutRecordBatch", batch("events", b"x"), tamper=tamper)
    assert_error(answer, 400, "InvalidSignatureException", f"Credential should be scoped {scoped}")


@pytest.mark.parametrize("header", ["Host", "X-Amz-Date"])
async def test_host_and_date_must_be_signed(secured: SecuredApi, header: str) -> None:
    tamper = _rewrite(f"{header.lower()};", "")
    answer = await secured.signed("PutRecordBatch", batch("events", b"x"), tamper=tamper)
    message = f"'{header}' must be a 'SignedHeader' in the AWS Authorization."
    assert_error(answer, 400, "InvalidSignatureException", message)


# -- allow-lists -----------------------------------------------------------------------------


def denied(action: str, resource: str, profile: str = "clicks") -> str:
    return (
        f"User: arn:aws:iam::{ACCOUNT}:user/{profile} is not authorized to perform: "
        f"firehose:{action} on resource: arn:aws:firehose:us-east-1:{ACCOUNT}:"
        f"deliverystream/{resource}"
    )


async def test_a_key_limited_to_a_stream_puts_there_only_on_both_paths(secured: SecuredApi) -> None:
    canonical = await secured.signed("PutRecordBatch", batch("events", b"mine\n"), CLICKS)
    assert canonical[0] == 200
    fast = batch("another", b"not mine\n")
    # A record the fast path refuses: the full parse authorizes the body before it checks it.
    full = {"DeliveryStreamName": "another", "Records": [{"Data": "eA="}]}
    assert _fast_batch(orjson.dumps(fast)) is not None
    assert _fast_batch(orjson.dumps(full)) is None
    for body in (fast, full):
        answer = await secured.signed("PutRecordBatch", body, CLICKS)
        assert_error(answer, 400, "AccessDeniedException", denied("PutRecordBatch", "another"))
    record = {"DeliveryStreamName": "another", "Record": {"Data": "eA=="}}
    answer = await secured.signed("PutRecord", record, CLICKS)
    assert_error(answer, 400, "AccessDeniedException", denied("PutRecord", "another"))
    assert secured.taken("another") == 0


async def test_a_key_limited_to_actions(secured: SecuredApi) -> None:
    def calls() -> tuple[Any, dict[str, Any], dict[str, Any]]:
        client = secured.boto(CLICKS)
        described = client.describe_delivery_stream(DeliveryStreamName="events")
        refused = boto_error(lambda: client.describe_delivery_stream(DeliveryStreamName="another"))
        listing = boto_error(client.list_delivery_streams)
        return described, refused, listing

    described, refused_describe, refused_list = await asyncio.to_thread(calls)
    assert described["DeliveryStreamDescription"]["DeliveryStreamName"] == "events"
    assert refused_describe == {
        "code": "AccessDeniedException",
        "message": denied("DescribeDeliveryStream", "another"),
        "status": 400,
    }
    assert refused_list["message"] == denied("ListDeliveryStreams", "*")


async def test_a_listing_shows_a_limited_key_its_streams_only(secured: SecuredApi) -> None:
    status, answer = await secured.signed("ListDeliveryStreams", {}, LOGS)
    assert (status, answer["DeliveryStreamNames"]) == (200, ["logs-app"])
    answer = await secured.signed("ListDeliveryStreams", {"Limit": 1}, LOGS)
    assert answer[1] == {"DeliveryStreamNames": ["logs-app"], "HasMoreDeliveryStreams": False}
    answer = await secured.signed("ListDeliveryStreams", {}, WRITER)
    assert answer[1]["DeliveryStreamNames"] == ["another", "events", "logs-app"]


async def test_a_request_naming_no_stream_is_checked_on_its_action(secured: SecuredApi) -> None:
    answer = await secured.signed("PutRecordBatch", {"Records": [{"Data": "eA=="}]}, CLICKS)
    assert answer[1]["__type"] == "ValidationException"
    answer = await secured.signed("ListDeliveryStreams", {}, CLICKS)
    assert_error(answer, 400, "AccessDeniedException", denied("ListDeliveryStreams", "*"))
