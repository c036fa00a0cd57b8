"""What the service observes of streams that come and go through the API: the history behind
the status page and the ratio metrics, the totals across a change of config, and the numbers of
a stream deleted and created again. In-process on a real service (objects to a local folder),
read over HTTP as a scraper would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from firehose.config import DeliveryStreamConfig
from firehose.describe import DESTINATION_ID
from firehose.service import Service
from firehose.settings import Settings
from firehose.testing.servers import free_port

ROLE = "arn:aws:iam::123456789012:role/r"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def body(name: str, bucket: str = "local", **destination: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "RoleARN": ROLE,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            **destination,
        },
    }


def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        port=free_port(),
        s3_endpoint_url=f"file://{tmp_path / 's3'}",
        shutdown_timeout_seconds=2,
    )


class Client:
    """The API, /metrics and /status.json of one running service, over HTTP."""

    def __init__(self, service: Service, session: aiohttp.ClientSession) -> None:
        self.url = f"http://127.0.0.1:{service.settings.port}"
        self.service = service
        self.session = session

    async def call(self, operation: str, request: dict[str, Any]) -> tuple[int, Any]:
        headers = {
            "X-Amz-Target": f"Firehose_20150804.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        }
        async with self.session.post(self.url, data=orjson.dumps(request), headers=headers) as a:
            return a.status, orjson.loads(await a.read())

    async def change(self, operation: str, request: dict[str, Any]) -> None:
        """A control-plane call, and whatever it left to do in the background."""
        status, answer = await self.call(operation, request)
        assert status == 200, answer
        await self.service.control.stop()

    async def put(self, name: str, count: int) -> None:
        records = [{"Data": "eA=="} for _ in range(count)]
        status, answer = await self.call(
            "PutRecordBatch", {"DeliveryStreamName": name, "Records": records}
        )
        assert status == 200 and answer["FailedPutCount"] == 0, answer

    async def metrics(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as answer:
            assert answer.status == 200
            text = await answer.text()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def status(self) -> dict[str, dict[str, Any]]:
        async with self.session.get(f"{self.url}/status.json") as answer:
            assert answer.status == 200
            document = await answer.json()
        return {stream["name"]: stream for stream in document["streams"]}


def of(samples: Samples, name: str, stream: str) -> float | None:
    return samples.get((name, (("delivery_stream_name", stream),)))


def labelled(samples: Samples, stream: str) -> list[str]:
    return [name for name, labels in samples if ("delivery_stream_name", stream) in labels]


async def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    fixed = DeliveryStreamConfig.model_validate(body("fixed"))
    # Two API streams made in an earlier run: they exist when the service starts.
    earlier = Service(settings(tmp_path), [fixed])
    await earlier.start()
    for name in ("early", "gone"):
        await earlier.control.create(body(name))
    await earlier.control.stop()
    assert await earlier.stop()

    service = Service(settings(tmp_path), [fixed])
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(service, session)
    finally:
        await service.stop()  # raises if anything stopping the service fails


async def test_history_follows_streams_created_and_deleted_through_the_api(
    client: Client, tmp_path: Path
) -> None:
    history = client.service.telemetry.history
    streams = client.service.streams
    history.take()
    await client.change("DeleteDeliveryStream", {"DeliveryStreamName": "gone"})
    history.take()  # one stream fewer than at start
    (tmp_path / "s3").mkdir(exist_ok=True)
    (tmp_path / "s3" / "blocked").write_text("a file where the bucket's folder must go")
    await client.change("CreateDeliveryStream", body("young", "blocked"))
    history.take()
    await client.put("young", 3)
    await wait_until(lambda: streams["young"].counters.delivery_failures > 0)
    history.take()

    status = await client.status()
    assert sorted(status) == ["early", "fixed", "young"]
    young = status["young"]
    assert len(young["series"]["time"]) >= 2  # samples taken since it was created, and now
    assert young["errors"] and "cannot write" in young["errors"][-1]["message"]
    assert status["early"]["errors"] == []
    samples = await client.metrics()
    assert labelled(samples, "gone") == []
    # No attempt of young's succeeded within the window its samples cover.
    assert of(samples, "firehose_DeliveryToS3_Success", "young") == 0.0
    assert of(samples, "firehose_DeliveryToS3_Success", "early") == 1.0

    # The sampling task goes on through all of this (the service stops cleanly afterwards).
    assert history._task is not None and not history._task.done()


async def test_a_changed_stream_counts_on_and_a_recreated_one_starts_afresh(
    client: Client,
) -> None:
    async def delivered(count: int) -> None:
        async with asyncio.timeout(30):
            samples = await client.metrics()
            while of(samples, "firehose_DeliveryToS3_Records_total", "kept") != count:
                await asyncio.sleep(0.05)
                samples = await client.metrics()

    await client.change("CreateDeliveryStream", body("kept", Prefix="one/"))
    await client.put("kept", 3)
    await delivered(3)  # each put its own object: read together, two would make one
    await client.put("kept", 2)
    await delivered(5)

    update = {
        "DeliveryStreamName": "kept",
        "CurrentDeliveryStreamVersionId": "1",
        "DestinationId": DESTINATION_ID,
        "ExtendedS3DestinationUpdate": {"Prefix": "two/"},
    }
    await client.change("UpdateDestination", update)
    await client.change(
        "StartDeliveryStreamEncryption",
        {
            "DeliveryStreamName": "kept",
            "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"},
        },
    )
    await client.put("kept", 1)
    await delivered(6)
    samples = await client.metrics()
    assert of(samples, "firehose_IncomingRecords_total", "kept") == 6
    assert of(samples, "firehose_DeliveryToS3_Records_total", "kept") == 6
    assert of(samples, "firehose_DeliveryToS3_ObjectCount_total", "kept") == 3
    assert of(samples, "firehose_IncomingPutRequests_total", "kept") == 3
    # UpdateDestination calls, under the name Firehose gives them; the key metrics of an
    # encrypted stream, none refused.
    assert of(samples, "firehose_UpdateDeliveryStream_Requests_total", "kept") == 1
    assert of(samples, "firehose_UpdateDeliveryStream_Latency_seconds_count", "kept") == 1
    assert of(samples, "firehose_KMSKeyNotFound_total", "kept") == 0

    await client.change("DeleteDeliveryStream", {"DeliveryStreamName": "kept"})
    assert labelled(await client.metrics(), "kept") == []
    await client.change("CreateDeliveryStream", body("kept"))
    samples = await client.metrics()
    assert of(samples, "firehose_IncomingPutRequests_total", "kept") == 0
    assert of(samples, "firehose_IncomingRecords_total", "kept") == 0
    assert of(samples, "firehose_PutRecordBatch_Records_total", "kept") == 0
    assert of(samples, "firehose_PutRecordBatch_Requests_total", "kept") is None
    assert of(samples, "firehose_UpdateDeliveryStream_Requests_total", "kept") is None
