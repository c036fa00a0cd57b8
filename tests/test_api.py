"""The JSON 1.1 wire contract: shapes, limits and errors, against the real aiohttp app."""

from __future__ import annotations

import asyncio
import base64
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from firehose.api import FirehoseApi, _fast_batch, joined_seqs
from firehose.errors import WalError
from firehose.stream import DeliveryStream
from firehose.testing.service_process import firehose_client
from tests.factories import memory_stream
from tests.memory_destination import MemoryDestination


@dataclass
class FakeService:
    streams: dict[str, DeliveryStream] = field(default_factory=dict)
    ready: bool = True
    region: str = "us-east-1"
    account_id: str = "123456789012"
    started_at: float = field(default_factory=time.time)


@dataclass
class Api:
    url: str
    service: FakeService
    destination: MemoryDestination
    session: aiohttp.ClientSession

    async def call(self, operation: str, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else __import__("orjson").dumps(body)
        headers = {
            "X-Amz-Target": f"Firehose_20150804.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        }
        async with self.session.post(self.url, data=data, headers=headers) as response:
            assert response.headers["Content-Type"].startswith("application/x-amz-json-1.1")
            assert response.headers["x-amzn-RequestId"]
            return response.status, await response.json(content_type=None)

    def boto(self) -> Any:
        return firehose_client(self.url)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    service = FakeService()
    stream, destination = memory_stream(tmp_path, name="events", max_undelivered_bytes=64 << 20)
    other, _ = memory_stream(tmp_path, name="another")
    service.streams = {"events": stream, "another": other}
    for s in service.streams.values():
        await s.open()
    server = TestServer(FirehoseApi(service).app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Api(str(server.make_url("/")), service, destination, session)
    await server.close()
    for s in service.streams.values():
        await s.close(timeout=1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def batch(*payloads: bytes, name: str = "events") -> dict[str, Any]:
    return {"DeliveryStreamName": name, "Records": [{"Data": b64(p)} for p in payloads]}


def assert_error(status: int, body: Any, code: str, http: int = 400, contains: str = "") -> None:
    assert (status, body["__type"]) == (http, code), body
    assert contains in body["message"]


async def test_put_record(api: Api) -> None:
    status, body = await api.call(
        "PutRecord", {"DeliveryStreamName": "events", "Record": {"Data": b64(b"hi")}}
    )
    assert status == 200
    assert body["Encrypted"] is False and isinstance(body["RecordId"], str) and body["RecordId"]


async def test_put_record_batch_gives_one_id_per_record_in_order(api: Api) -> None:
    status, body = await api.call("PutRecordBatch", batch(*[b"x%d" % i for i in range(500)]))
    assert status == 200
    assert body["FailedPutCount"] == 0 and body["Encrypted"] is False
    ids = [r["RecordId"] for r in body["RequestResponses"]]
    assert len(ids) == 500 == len(set(ids))


async def test_record_size_limit_is_exact(api: Api) -> None:
    status, _ = await api.call("PutRecordBatch", batch(b"a" * 1_024_000))
    assert status == 200
    status, body = await api.call(
        "PutRecordBatch", batch(b"ok", b"a" * 1_024_001, b"b" * 1_024_001)
    )
    assert_error(status, body, "ValidationException", contains="2 validation errors detected: ")
    assert (
        "at 'records.2.member.data' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024000" in body["message"]
    )
    assert "'records.3.member.data'" in body["message"]
    status, body = await api.call(
        "PutRecord", {"DeliveryStreamName": "events", "Record": {"Data": b64(b"a" * 1_024_001)}}
    )
    assert_error(status, body, "ValidationException", contains="1 validation error detected: ")
    assert "at 'record.data'" in body["message"]


async def test_batch_record_count_limits(api: Api) -> None:
    status, body = await api.call("PutRecordBatch", batch(*[b"x"] * 501))
    assert_error(status, body, "ValidationException", contains="less than or equal to 500")
    assert "at 'records'" in body["message"]
    status, body = await api.call("PutRecordBatch", batch())
    assert_error(status, body, "ValidationException", contains="greater than or equal to 1")


async def test_batch_size_limit_of_4_mib(api: Api) -> None:
    status, body = await api.call("PutRecordBatch", batch(*[b"a" * 1_000_000] * 5))
    assert_error(
        status, body, "InvalidArgumentException", contains="Records size exceeds 4 MB limit"
    )
    status, _ = await api.call("PutRecordBatch", batch(*[b"a" * 1_000_000] * 4))
    assert status == 200
    assert api.destination.attempts == []  # nothing of the refused call was buffered ahead


async def test_nothing_of_an_invalid_batch_is_accepted(api: Api, tmp_path: Path) -> None:
    stream = api.service.streams["events"]
    await api.call("PutRecordBatch", batch(b"good", b"a" * 1_024_001))
    assert stream.counters.incoming_records == 0


@pytest.mark.parametrize(
    ("body", "contains"),
    [
        (
            {"Records": [{"Data": "eA=="}]},
            "Value null at 'deliveryStreamName' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            {"DeliveryStreamName": "x" * 65, "Records": [{"Data": "eA=="}]},
            "Member must have length less than or equal to 64",
        ),
        (
            {"DeliveryStreamName": "bad name!", "Records": [{"Data": "eA=="}]},
            "regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
        ({"DeliveryStreamName": "events"}, "Value null at 'records'"),
        (
            {"DeliveryStreamName": "events", "Records": [{}]},
            "Value null at 'records.1.member.data'",
        ),
    ],
)
async def test_validation_errors(api: Api, body: dict[str, Any], contains: str) -> None:
    status, answer = await api.call("PutRecordBatch", body)
    assert_error(status, answer, "ValidationException", contains=contains)


@pytest.mark.parametrize(
    ("raw", "contains"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"DeliveryStreamName": 5, "Records": []}', "DeliveryStreamName"),
        (b'{"DeliveryStreamName": "events", "Records": "abc"}', "Records"),
        (b'{"DeliveryStreamName": "events", "Records": [{"Data": 12}]}', "base64"),
        (b'{"DeliveryStreamName": "events", "Records": ["x"]}', "records.1.member"),
        (b'{"DeliveryStreamName": "events", "Records": [{"Data": "eA"}]}', "not valid base64"),
        (b'{"DeliveryStreamName": "events", "Records": [{"Data": "e*A="}]}', "not valid base64"),
    ],
)
async def test_serialization_errors(api: Api, raw: bytes, contains: str) -> None:
    status, body = await api.call("PutRecordBatch", None, raw=raw)
    assert_error(status, body, "SerializationException", contains=contains)


async def test_unknown_stream(api: Api) -> None:
    status, body = await api.call("PutRecordBatch", batch(b"x", name="missing"))
    assert_error(
        status,
        body,
        "ResourceNotFoundException",
        contains="Firehose missing not found under account 123456789012.",
    )
    status, body = await api.call("DescribeDeliveryStream", {"DeliveryStreamName": "missing"})
    assert_error(status, body, "ResourceNotFoundException")


async def test_unknown_and_unsupported_operations(api: Api) -> None:
    status, body = await api.call("Explode", {})
    assert_error(status, body, "UnknownOperationException")
    async with api.session.post(api.url, data=b"{}") as response:  # no X-Amz-Target at all
        assert response.status == 400
        assert (await response.json(content_type=None))["__type"] == "UnknownOperationException"
    status, body = await api.call("CreateDeliveryStream", {"DeliveryStreamName": "x"})
    assert_error(status, body, "InvalidArgumentException", contains="YAML")


async def test_oversize_body_is_refused_with_a_firehose_error(api: Api) -> None:
    status, body = await api.call("PutRecordBatch", None, raw=b" " * (9 * 1024 * 1024))
    assert_error(
        status, body, "InvalidArgumentException", contains="Records size exceeds 4 MB limit"
    )


async def test_backpressure_partial_then_whole_failure(api: Api) -> None:
    stream = api.service.streams["events"]
    stream.max_undelivered_bytes = 250
    api.destination.open.clear()
    status, body = await api.call("PutRecordBatch", batch(*[b"x" * 100] * 4))
    assert status == 200 and body["FailedPutCount"] == 2
    assert "RecordId" in body["RequestResponses"][1]
    assert body["RequestResponses"][2] == {
        "ErrorCode": "ServiceUnavailableException",
        "ErrorMessage": "Slow down.",
    }
    status, body = await api.call("PutRecordBatch", batch(b"x" * 100))
    assert_error(status, body, "ServiceUnavailableException", http=503, contains="Slow down.")
    status, body = await api.call(
        "PutRecord", {"DeliveryStreamName": "events", "Record": {"Data": b64(b"x" * 100)}}
    )
    assert_error(status, body, "ServiceUnavailableException", http=503)
    api.destination.open.set()


async def test_not_ready_answers_503(api: Api) -> None:
    api.service.ready = False
    status, body = await api.call("PutRecordBatch", batch(b"x"))
    assert_error(status, body, "ServiceUnavailableException", http=503)
    async with api.session.get(api.url + "health") as response:
        assert response.status == 503
    api.service.ready = True
    async with api.session.get(api.url + "health") as response:
        assert response.status == 200
        assert (await response.json())["streams"]["events"]["accepting"] is True


async def test_list_delivery_streams_pages_alphabetically(api: Api) -> None:
    status, body = await api.call("ListDeliveryStreams", {})
    assert (status, body) == (
        200,
        {"DeliveryStreamNames": ["another", "events"], "HasMoreDeliveryStreams": False},
    )
    _, body = await api.call("ListDeliveryStreams", {"Limit": 1})
    assert body == {"DeliveryStreamNames": ["another"], "HasMoreDeliveryStreams": True}
    _, body = await api.call(
        "ListDeliveryStreams", {"Limit": 1, "ExclusiveStartDeliveryStreamName": "another"}
    )
    assert body == {"DeliveryStreamNames": ["events"], "HasMoreDeliveryStreams": False}
    _, body = await api.call("ListDeliveryStreams", {"DeliveryStreamType": "KinesisStreamAsSource"})
    assert body["DeliveryStreamNames"] == []
    status, body = await api.call("ListDeliveryStreams", {"DeliveryStreamType": "Nope"})
    assert_error(status, body, "ValidationException", contains="enum value set")
    status, body = await api.call("ListDeliveryStreams", {"Limit": 0})
    assert_error(status, body, "ValidationException")


async def test_boto3_client_works_unchanged(api: Api) -> None:
    def produce() -> None:
        client = api.boto()
        answer = client.put_record_batch(
            DeliveryStreamName="events", Records=[{"Data": b"%d\n" % i} for i in range(100)]
        )
        assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 100
        assert client.put_record(DeliveryStreamName="events", Record={"Data": b"one\n"})["RecordId"]
        description = client.describe_delivery_stream(DeliveryStreamName="events")[
            "DeliveryStreamDescription"
        ]
        assert description["DeliveryStreamStatus"] == "ACTIVE"
        assert (
            description["DeliveryStreamARN"]
            == "arn:aws:firehose:us-east-1:123456789012:deliverystream/events"
        )
        assert description["VersionId"] == "1"
        destination = description["Destinations"][0]
        assert destination["DestinationId"] == "destinationId-000000000001"
        s3 = destination["ExtendedS3DestinationDescription"]
        assert s3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
        assert s3["CompressionFormat"] == "UNCOMPRESSED"
        assert s3["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.put_record(DeliveryStreamName="nope", Record={"Data": b"x"})
        with pytest.raises(client.exceptions.InvalidArgumentException):
            client.put_record_batch(
                DeliveryStreamName="events", Records=[{"Data": b"a" * 1_000_000}] * 5
            )

    await asyncio.to_thread(produce)
    await api.service.streams["events"].close(timeout=5)
    assert api.destination.data == b"".join(b"%d\n" % i for i in range(100)) + b"one\n"


async def test_limit_checks_use_aws_wording_and_json_types(api: Api) -> None:
    status, body = await api.call("ListDeliveryStreams", {"Limit": 10001})
    assert_error(status, body, "ValidationException", contains="less than or equal to 10000")
    status, body = await api.call(
        "DescribeDeliveryStream", {"DeliveryStreamName": "events", "Limit": 0}
    )
    assert_error(status, body, "ValidationException", contains="greater than or equal to 1")
    status, body = await api.call("ListDeliveryStreams", {"Limit": True})
    assert_error(status, body, "SerializationException", contains="Limit")


async def test_every_bad_record_is_reported_in_one_answer(api: Api) -> None:
    records = [{"Data": b64(b"ok")}, {}, {"Data": b64(b"a" * 1_024_001)}]
    status, body = await api.call(
        "PutRecordBatch", {"DeliveryStreamName": "events", "Records": records}
    )
    assert_error(status, body, "ValidationException", contains="2 validation errors detected")
    assert "'records.2.member.data'" in body["message"]
    assert "'records.3.member.data'" in body["message"]


async def test_a_log_that_cannot_be_written_answers_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(records: list[bytes], arrival_ms: int) -> tuple[int, int]:
        raise WalError("cannot write the write-ahead log: [Errno 28] No space left on device")

    monkeypatch.setattr(api.service.streams["events"].wal, "append", disk_full)
    status, body = await api.call("PutRecordBatch", batch(b"x"))
    assert_error(status, body, "ServiceUnavailableException", http=503, contains="cannot store")


async def test_an_internal_bug_answers_a_firehose_shaped_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(records: list[bytes]) -> tuple[int, int]:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.service.streams["events"], "put", broken)
    body = {"DeliveryStreamName": "events", "Record": {"Data": "eA=="}}
    status, answer = await api.call("PutRecord", body)
    assert_error(status, answer, "InternalFailure", http=500)


# Valid PutRecordBatch bodies are decoded in one pass (`_fast_batch`): every body must get
# exactly the answer the full parse gives, and only bodies the full parse accepts take it.
_E = b'{"DeliveryStreamName":"events","Records":'
TRICKY_BATCHES = [
    _E + b'[{"Data":"eA=="},{"Data":""},{"Data":"AAEC"}]}',  # canonical
    _E + b'[{"Data":"eA=="}]}\n',  # trailing whitespace
    b'{"DeliveryStreamName": "events", "Records": [{"Data": "eA=="}, {"Data": "eQ=="}]}',
    b'{"Records":[{"Data":"eA=="}],"DeliveryStreamName":"events"}',  # other key order
    _E + b'[{"Data":"eA==","PartitionKey":"p"}]}',  # extra record key
    _E + b'[{"PartitionKey":"p","Data":"eA=="}]}',
    _E + b'[{"Data":"eA=="}],"Extra":[{"a":"b"}]}',  # extra key ending like the canonical
    _E + b'[{"Data":"eA=="}],"Records":[{"Data":"eQ=="}]}',  # duplicate keys
    _E + b'[{"Data":"eA==","Data":"eQ=="}]}',
    _E + b'[{"Data":"eA\\u003d\\u003d"}]}',  # unicode escapes in Data
    _E + b'[{"Data":"\\u0065A=="}]}',
    _E + b'[{"Data":"e\\/8="}]}',  # an escaped slash
    _E + b'[{"Data":"eA==\\n"}]}',
    _E + b'[{"Data":"eA =="}]}',  # bad base64
    _E + b'[{"Data":"eA="}]}',
    _E + b'[{"Data":"eA"}]}',
    _E + b'[{"Data":"e-_="}]}',
    _E + b'[{"Data":"eA\\"=="}]}',
    _E + '[{"Data":"eA==é"}]}'.encode(),
    _E + b'[{"Data":"eA\xff=="}]}',  # not UTF-8
    _E + b'[{"Data":"eA=="},{"Data":null}]}',
    _E + b'[{"Data":"eA=="},{"Data":"eQ=="},]}',
    _E + b'[{"Data":"}]}',  # a string cut short that ends like the canonical
    _E + b'[{"Data":"eA=="}}]}',
    _E + b"[]}",
    _E + b'[{"Data":"eA=="}' + b',{"Data":"eA=="}' * 500 + b"]}",  # 501 records
    _E + b'[{"Data":"' + base64.b64encode(b"a" * 1_024_001) + b'"}]}',  # a record too large
    b'{"DeliveryStreamName":"ev\\u0065nts","Records":[{"Data":"eA=="}]}',  # escaped name
    b'{"DeliveryStreamName":"' + b"e" * 65 + b'","Records":[{"Data":"eA=="}]}',
    b'{"DeliveryStreamName":"ev ents","Records":[{"Data":"eA=="}]}',
    b'{"DeliveryStreamName":"","Records":[{"Data":"eA=="}]}',
    b'{"DeliveryStreamName":"missing","Records":[{"Data":"eA=="}]}',
    _E + b'[{"Data":"eB=="},{"Data":"eHl="}]}',  # padding bits that are not zero
    _E + b'[{"Data":"eA==eA=="}]}',
    _E + b'[{"Data":"\\u0020eA=="}]}',
    _E + b'[{"Data":7}]}',
    _E + b'[{"Data":{"a":"eA=="}}]}',
    _E + b'[{"data":"eA=="}]}',
    _E + b'["eA=="]}',
    _E + b'{"Data":"eA=="}}',
    _E + b"null}",
    b'{"DeliveryStreamName":7,"Records":[{"Data":"eA=="}]}',
    b'{"Records":[{"Data":"eA=="}]}',
    b'[{"DeliveryStreamName":"events","Records":[{"Data":"eA=="}]}]',
    b"\xef\xbb\xbf" + _E + b'[{"Data":"eA=="}]}',  # a byte order mark
    b"",
]


def _normalized(status: int, body: Any) -> tuple[int, Any]:
    """An answer with its record ids (seqs of the log) reduced to how many there were."""
    if status == 200:
        body = {**body, "RequestResponses": len(body["RequestResponses"])}
    return status, body


@pytest.mark.parametrize("raw", TRICKY_BATCHES)
async def test_fast_batches_answer_as_the_full_parse_does(
    api: Api, raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _normalized(*await api.call("PutRecordBatch", None, raw=raw))
    monkeypatch.setattr("firehose.api._fast_batch", lambda raw: None)
    slow = _normalized(*await api.call("PutRecordBatch", None, raw=raw))
    assert fast == slow


@pytest.mark.parametrize("raw", TRICKY_BATCHES)
def test_fast_batches_decode_as_the_full_parse_does(raw: bytes) -> None:
    found = _fast_batch(raw)
    if found is None:
        return
    body = orjson.loads(raw)
    assert found == (
        body["DeliveryStreamName"],
        [base64.b64decode(item["Data"], validate=True) for item in body["Records"]],
    )


def _full_parse_accepts(raw: bytes) -> bool:
    """Whether a PutRecordBatch body passes every check of its stream name and records."""
    try:
        body = orjson.loads(raw)
        name, items = body["DeliveryStreamName"], body["Records"]
        records = [base64.b64decode(item["Data"], validate=True) for item in items]
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return False
    return (
        isinstance(name, str)
        and re.fullmatch(r"[a-zA-Z0-9_.-]{1,64}", name) is not None
        and 1 <= len(records) <= 500
        and max(map(len, records)) <= 1_024_000
    )


def test_exactly_the_bodies_the_full_parse_accepts_take_the_fast_path() -> None:
    assert _fast_batch(TRICKY_BATCHES[0]) == ("events", [b"x", b"", b"\x00\x01\x02"])
    assert _fast_batch(orjson.dumps(batch(*[b"r%d" % i for i in range(500)]))) is not None
    assert _fast_batch(TRICKY_BATCHES[2]) is not None  # another layout of the same JSON
    assert _fast_batch(TRICKY_BATCHES[-1]) is None
    for raw in TRICKY_BATCHES:
        assert (_fast_batch(raw) is not None) == _full_parse_accepts(raw), raw[:80]


def test_joined_seqs_is_str_of_each_seq_joined() -> None:
    rng = random.Random(3)
    firsts = [*range(0, 2100, 7), 999, 1000, 1999, 10**6 - 3, 10**9 - 1]
    firsts += [rng.randrange(10**15) for _ in range(500)]
    for first in firsts:
        for count in (0, 1, 2, 499, 500, rng.randint(1, 2500)):
            expected = '"},{"RecordId":"x:'.join(map(str, range(first, first + count)))
            assert joined_seqs('"},{"RecordId":"x:', first, count) == expected, (first, count)
