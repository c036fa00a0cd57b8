"""The OpenSearch destination against osmem-server (documents searched back) and against an
aiohttp cluster stand-in answering with the per-item failure shapes real OpenSearch sends."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web

from destinations.bulk import OUTPUT_TYPE
from destinations.error_records import error_record
from destinations.opensearch import OpenSearchDestination
from firehose.batch import Batch, RecordRun
from firehose.config import DeliveryStreamConfig, OpenSearchConfiguration
from firehose.errors import DeliveryError
from firehose.testing.opensearch_server import SearchServer
from firehose.testing.servers import free_port

ARRIVAL = datetime(2016, 2, 25, 13, tzinfo=UTC)
ARRIVAL_MS = int(ARRIVAL.timestamp() * 1000)


def section(endpoint: str, index: str, **extra: Any) -> OpenSearchConfiguration:
    config = DeliveryStreamConfig.model_validate(
        {
            "DeliveryStreamName": "docs",
            "AmazonopensearchserviceDestinationConfiguration": {
                "ClusterEndpoint": endpoint,
                "IndexName": index,
                "S3Configuration": {"BucketARN": "arn:aws:s3:::backup"},
                **extra,
            },
        }
    )
    assert isinstance(config.destination, OpenSearchConfiguration)
    return config.destination


def batch_of(*records: bytes, arrival_ms: int = ARRIVAL_MS, first_seq: int = 1) -> Batch:
    batch = Batch()
    batch.add(
        RecordRun(first_seq, arrival_ms, [len(r) for r in records], memoryview(b"".join(records)))
    )
    return batch


def fresh_index() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


# -- against osmem-server -------------------------------------------------------------------


async def test_documents_are_indexed_under_the_daily_index_with_stable_ids(
    search_server: SearchServer,
) -> None:
    index = fresh_index()
    destination = OpenSearchDestination("docs", section(search_server.url, index))
    batch = batch_of(b'{"n":1}\n', b'{"n":2}', b'{\n  "n": 3\n}\n')
    try:
        assert (await destination.deliver(batch)).failed == []
        assert (await destination.deliver(batch)).failed == []  # a retry overwrites
    finally:
        await destination.close()

    documents = search_server.documents(f"{index}-2016-02-25")
    assert sorted(doc["n"] for doc in documents.values()) == [1, 2, 3]
    assert set(documents) == {f"{batch.object_id}-{seq}-0" for seq in (1, 2, 3)}


@pytest.mark.parametrize(
    ("period", "suffix"),
    [
        ("NoRotation", ""),
        ("OneHour", "-2016-02-25-13"),
        ("OneDay", "-2016-02-25"),
        ("OneWeek", "-2016-w09"),
        ("OneMonth", "-2016-02"),
    ],
)
async def test_each_rotation_period_names_the_index(
    search_server: SearchServer, period: str, suffix: str
) -> None:
    index = fresh_index()
    config = section(search_server.url, index, IndexRotationPeriod=period)
    destination = OpenSearchDestination("docs", config)
    try:
        assert (await destination.deliver(batch_of(b'{"p":1}'))).failed == []
    finally:
        await destination.close()
    assert search_server.count(f"{index}{suffix}") == 1


async def test_records_of_different_hours_go_to_their_own_index(
    search_server: SearchServer,
) -> None:
    index = fresh_index()
    destination = OpenSearchDestination(
        "docs", section(search_server.url, index, IndexRotationPeriod="OneHour")
    )
    batch = batch_of(b'{"h":13}')
    batch.add(RecordRun(2, ARRIVAL_MS + 3_600_000, [8], memoryview(b'{"h":14}')))
    try:
        assert (await destination.deliver(batch)).failed == []
    finally:
        await destination.close()
    assert search_server.count(f"{index}-2016-02-25-13") == 1
    assert search_server.count(f"{index}-2016-02-25-14") == 1


async def test_no_document_id_lets_the_cluster_pick_ids(search_server: SearchServer) -> None:
    index = fresh_index()
    config = section(
        search_server.url,
        index,
        IndexRotationPeriod="NoRotation",
        DocumentIdOptions={"DefaultDocumentIdFormat": "NO_DOCUMENT_ID"},
    )
    destination = OpenSearchDestination("docs", config)
    batch = batch_of(b'{"n":1}', b'{"n":2}')
    try:
        await destination.deliver(batch)
        await destination.deliver(batch)  # no ids: the second attempt adds documents
    finally:
        await destination.close()
    documents = search_server.documents(index)
    assert len(documents) == 4
    assert not any(doc_id.startswith(batch.object_id) for doc_id in documents)


async def test_a_mapping_conflict_from_the_cluster_is_filed_at_once(
    search_server: SearchServer,
) -> None:
    index = fresh_index()
    destination = OpenSearchDestination(
        "docs", section(search_server.url, index, IndexRotationPeriod="NoRotation")
    )
    try:
        await destination.deliver(batch_of(b'{"n":1}'))
        result = await destination.deliver(batch_of(b'{"n":"text"}', b'{"n":2}', first_seq=5))
    finally:
        await destination.close()
    [failure] = result.failed
    assert failure.retriable is False
    assert failure.error_code == "mapper_parsing_exception"
    assert "failed to parse field [n]" in failure.error_message
    assert failure.details["esIndexName"] == index
    assert failure.details["esDocumentId"].endswith("-5-0")
    assert search_server.count(index) == 2


async def test_records_that_are_not_json_objects_are_filed_without_being_sent(
    search_server: SearchServer,
) -> None:
    index = fresh_index()
    destination = OpenSearchDestination("docs", section(search_server.url, index))
    try:
        result = await destination.deliver(batch_of(b"plain text\n", b"[1, 2]", b'{"ok":1}'))
        only_bad = await destination.deliver(batch_of(b"nope"))
    finally:
        await destination.close()
    assert [f.record.seq for f in result.failed] == [1, 2]
    assert {f.error_code for f in result.failed} == {"OS.MalformedData"}
    assert not any(f.retriable for f in result.failed)
    assert [f.error_code for f in only_bad.failed] == ["OS.MalformedData"]
    assert search_server.count(f"{index}-2016-02-25") == 1


async def test_basic_auth_and_type_name_are_sent(search_server: SearchServer) -> None:
    seen: list[tuple[str | None, bytes]] = []

    async def bulk(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), await request.read()))
        return web.json_response(
            {"took": 1, "errors": False, "items": [{"index": {"status": 201}}]}
        )

    async with ClusterStandIn(bulk) as url:
        config = section(url, "logs", TypeName="_doc", Username="elastic", Password="s3cret!")
        destination = OpenSearchDestination("docs", config)
        try:
            assert (await destination.deliver(batch_of(b'{"a":1}'))).failed == []
        finally:
            await destination.close()
    [(auth, body)] = seen
    assert auth == "Basic " + base64.b64encode(b"elastic:s3cret!").decode()
    action, source = body.splitlines()
    assert orjson.loads(action)["index"]["_type"] == "_doc"
    assert source == b'{"a":1}'
    assert "s3cret" not in repr(config)


# -- per-item failure shapes, as real OpenSearch answers -------------------------------------


def _item(status: int, error: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"_index": "logs-2016-02-25", "status": status, **extra}
    if error is not None:
        result["error"] = error
    else:
        result.update({"_version": 1, "result": "created", "_shards": {"total": 2}})
    return {"index": result}


MAPPING_CONFLICT = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [n] of type [long] in document with id 'x'",
    "caused_by": {"type": "illegal_argument_exception", "reason": 'For input string: "a"'},
}
REJECTED = {
    "type": "es_rejected_execution_exception",
    "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes="
    "0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, "
    "max_coordinating_and_primary_bytes=0]",
}
VERSION_CONFLICT = {
    "type": "version_conflict_engine_exception",
    "reason": "[x]: version conflict, required seqNo [1], primary term [1]. current document "
    "has seqNo [2] and primary term [1]",
    "index": "logs-2016-02-25",
    "shard": "0",
}


class ClusterStandIn:
    """An aiohttp server answering `/_bulk` with `handler`; its URL on entering."""

    def __init__(self, handler: Callable[[web.Request], Any]) -> None:
        self.app = web.Application()
        self.app.router.add_post("/_bulk", handler)
        self.runner = web.AppRunner(self.app)

    async def __aenter__(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def answering() -> AsyncIterator[Callable[[list[dict[str, Any]]], Any]]:
    """A stand-in whose bulk answer has the items given; yields a function returning its URL."""
    stand_ins: list[ClusterStandIn] = []

    async def start(items: list[dict[str, Any]]) -> str:
        async def bulk(request: web.Request) -> web.Response:
            await request.read()
            errors = any("error" in next(iter(item.values())) for item in items)
            return web.json_response({"took": 3, "errors": errors, "items": items})

        stand_in = ClusterStandIn(bulk)
        stand_ins.append(stand_in)
        return await stand_in.__aenter__()

    yield start
    for stand_in in stand_ins:
        await stand_in.__aexit__()


async def test_item_failures_are_read_one_by_one(
    answering: Callable[[list[dict[str, Any]]], Any],
) -> None:
    url = await answering(
        [
            _item(201),
            _item(400, MAPPING_CONFLICT, _id="b"),
            _item(429, REJECTED, _id="c"),
            _item(409, VERSION_CONFLICT, _id="d"),
            _item(
                503,
                {"type": "unavailable_shards_exception", "reason": "primary shard is not active"},
            ),
        ]
    )
    destination = OpenSearchDestination("docs", section(url, "logs"))
    batch = batch_of(*[b'{"i":%d}' % i for i in range(5)])
    try:
        result = await destination.deliver(batch)
    finally:
        await destination.close()
    by_seq = {failure.record.seq: failure for failure in result.failed}
    assert sorted(by_seq) == [2, 3, 4, 5]
    assert by_seq[2].error_code == "mapper_parsing_exception"
    assert not by_seq[2].retriable
    assert "caused by illegal_argument_exception" in by_seq[2].error_message
    assert by_seq[3].error_code == "es_rejected_execution_exception"
    assert by_seq[3].retriable
    assert by_seq[4].error_code == "version_conflict_engine_exception"
    assert not by_seq[4].retriable
    assert by_seq[5].retriable
    record = error_record(by_seq[4], attempts=1, now_ms=0)
    assert record["errorCode"] == "version_conflict_engine_exception"
    assert record["esDocumentId"] == "d"
    assert record["esIndexName"] == "logs-2016-02-25"
    assert record["esTypeName"] is None
    assert base64.b64decode(record["rawData"]) == b'{"i":3}'
    assert by_seq[2].output_type == OUTPUT_TYPE


async def test_a_retry_sends_only_the_failed_documents_with_their_ids() -> None:
    bodies: list[bytes] = []

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()
        bodies.append(body)
        count = len(body.splitlines()) // 2
        first = _item(429, REJECTED) if len(bodies) == 1 else _item(201)
        return web.json_response(
            {"took": 1, "errors": len(bodies) == 1, "items": [first] + [_item(201)] * (count - 1)}
        )

    async with ClusterStandIn(bulk) as url:
        destination = OpenSearchDestination("docs", section(url, "logs"))
        batch = batch_of(b'{"a":1}', b'{"b":2}')
        try:
            [failure] = (await destination.deliver(batch)).failed
            retry = batch.subset([failure.record])
            assert (await destination.deliver(retry)).failed == []
        finally:
            await destination.close()
    first_actions = [orjson.loads(line) for line in bodies[0].splitlines()[::2]]
    retry_actions = [orjson.loads(line) for line in bodies[1].splitlines()[::2]]
    assert retry_actions == first_actions[:1]
    assert bodies[1].splitlines()[1] == b'{"a":1}'


@pytest.mark.parametrize(
    ("status", "retriable"), [(503, True), (429, True), (400, False), (401, False)]
)
async def test_a_refused_request_is_raised(status: int, retriable: bool) -> None:
    async def bulk(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"error": {"type": "some_exception"}, "status": status}, status=status
        )

    async with ClusterStandIn(bulk) as url:
        destination = OpenSearchDestination("docs", section(url, "logs"))
        try:
            with pytest.raises(DeliveryError) as raised:
                await destination.deliver(batch_of(b'{"a":1}'))
        finally:
            await destination.close()
    assert raised.value.code == str(status)
    assert raised.value.retriable is retriable
    assert raised.value.output_type == OUTPUT_TYPE


async def test_an_unreachable_cluster_is_a_connection_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    destination = OpenSearchDestination("docs", section(url, "logs"))
    try:
        with pytest.raises(DeliveryError) as raised:
            await destination.deliver(batch_of(b'{"a":1}'))
    finally:
        await destination.close()
    assert raised.value.code == "OS.ConnectionFailed"
    assert raised.value.retriable


async def test_an_answer_that_is_no_bulk_answer_is_raised() -> None:
    async def bulk(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="<html>proxy</html>")

    async with ClusterStandIn(bulk) as url:
        destination = OpenSearchDestination("docs", section(url, "logs"))
        try:
            with pytest.raises(DeliveryError, match="without a bulk answer"):
                await destination.deliver(batch_of(b'{"a":1}'))
        finally:
            await destination.close()
