"""The Kinesis source against real Kinesis servers (kinesalite and moto), in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from botocore.exceptions import ClientError

from firehose.config import BufferingHints
from firehose.destination import SourceBackup
from firehose.sources.envelope import wrap
from firehose.sources.kinesis import KinesisSource
from firehose.stream import DeliveryStream
from tests.kinesis_fixtures import ACCOUNT, KinesisServer, kinesis_config, source_for
from tests.memory_destination import MemoryDestination
from transforms.processor import ProcessingContext
from transforms.stage import build_stage, source_steps

pytestmark = pytest.mark.timeout(120)


def _stream(tmp_path: Path, arn: str, **kwargs: Any) -> tuple[DeliveryStream, MemoryDestination]:
    config = kinesis_config(arn)
    context = ProcessingContext(config.name, "arn:stream", "us-east-1", transform_mode="inline",
                                source_kinesis_stream_arn=arn)  # fmt: skip
    destination = MemoryDestination()
    stream = DeliveryStream(
        config,
        destination,
        data_dir=tmp_path,
        max_undelivered_bytes=kwargs.pop("max_undelivered_bytes", 1 << 30),
        stage=build_stage(None, context, source_steps=source_steps(config, context)),
        **kwargs,
    )
    return stream, destination


@contextlib.asynccontextmanager
async def running(stream: DeliveryStream, source: KinesisSource) -> AsyncIterator[None]:
    await stream.open()
    await source.start()
    try:
        yield
    finally:
        await source.stop()
        await stream.close(timeout=5)


def lines(destination: MemoryDestination) -> list[str]:
    return destination.data.decode().splitlines()


def put(server: KinesisServer, arn: str, keys: list[str], start: int, count: int) -> None:
    client = server.client()
    name = arn.rsplit("/", 1)[1]
    for i in range(start, start + count, 100):
        entries = [
            {"Data": f"{keys[j % len(keys)]}:{j}\n".encode(), "PartitionKey": keys[j % len(keys)]}
            for j in range(i, min(i + 100, start + count))
        ]
        answer = client.put_records(StreamName=name, Records=entries)
        assert answer["FailedRecordCount"] == 0


def assert_in_order(got: list[str], expected: int) -> None:
    """Every record once at least; per partition key (so per shard) in put order."""
    assert len({line for line in got}) == expected, (len(set(got)), expected)
    last: dict[str, int] = {}
    for line in got:
        key, number = line.split(":")
        assert int(number) > last.get(key, -1), (key, number, last.get(key))
        last[key] = int(number)


async def until(predicate: Any, timeout: float = 30.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.1)

    await asyncio.wait_for(wait(), timeout)


async def test_order_within_a_shard(kinesis: KinesisServer, tmp_path: Path) -> None:
    arn = kinesis.create_stream(shards=3)
    stream, destination = _stream(tmp_path, arn)
    source = source_for(kinesis, stream, tmp_path)
    keys = [f"k{i}" for i in range(12)]
    put(kinesis, arn, keys, 0, 600)
    async with running(stream, source):
        await until(lambda: len(set(lines(destination))) >= 600)
        put(kinesis, arn, keys, 600, 300)
        await until(lambda: len(set(lines(destination))) >= 900)
    assert_in_order(lines(destination), 900)
    leases = json.loads((tmp_path / "sources" / "events" / "leases.json").read_text())
    assert len(leases) == 3
    assert all(lease["checkpoint"].isdigit() for lease in leases.values())  # all checkpointed


async def test_split_and_merge_read_parents_first(kinesis: KinesisServer, tmp_path: Path) -> None:
    arn = kinesis.create_stream(shards=1)
    name = arn.rsplit("/", 1)[1]
    client = kinesis.client()
    stream, destination = _stream(tmp_path, arn)
    source = source_for(kinesis, stream, tmp_path)
    keys = [f"k{i}" for i in range(8)]
    async with running(stream, source):
        put(kinesis, arn, keys, 0, 200)
        await until(lambda: len(set(lines(destination))) >= 100)
        client.split_shard(
            StreamName=name,
            ShardToSplit="shardId-000000000000",
            NewStartingHashKey=str(2**127),
        )
        kinesis.wait_active(name)
        put(kinesis, arn, keys, 200, 200)
        children = [s["ShardId"] for s in client.list_shards(StreamName=name)["Shards"]][1:]
        client.merge_shards(
            StreamName=name, ShardToMerge=children[0], AdjacentShardToMerge=children[1]
        )
        kinesis.wait_active(name)
        put(kinesis, arn, keys, 400, 200)
        await until(lambda: len(set(lines(destination))) >= 600, timeout=60)
    assert_in_order(lines(destination), 600)


async def test_kpl_aggregates_are_undone(kinesis: KinesisServer, tmp_path: Path) -> None:
    arn = kinesis.create_stream(shards=1)
    aggregator = RecordAggregator()
    user_records = [f"user-{i}\n".encode() for i in range(50)]
    for index, data in enumerate(user_records):
        assert aggregator.add_user_record(f"pk{index % 5}", data) is None
    pk, _, aggregate = aggregator.clear_and_get().get_contents()
    kinesis.client().put_record(StreamName=arn.rsplit("/", 1)[1], Data=aggregate, PartitionKey=pk)
    stream, destination = _stream(tmp_path, arn)
    async with running(stream, source_for(kinesis, stream, tmp_path)):
        await destination.wait_for_records(50, timeout=30)
    assert destination.data == b"".join(user_records)


async def test_source_backup_gets_records_not_envelopes(tmp_path: Path) -> None:
    backup = MemoryDestination()
    stream, destination = _stream(
        tmp_path,
        "arn:aws:kinesis:us-east-1:000000000000:stream/x",
        source_backup=SourceBackup(backup, BufferingHints(size_in_mbs=1, interval_in_seconds=0)),
    )
    await stream.open()
    envelopes = [wrap("shardId-0", "pk", str(100 + i), 1_700_000_000_000, b"r%d\n" % i)
                 for i in range(3)]  # fmt: skip
    await stream.put(envelopes, arrival_ms=1_700_000_000_000)
    await destination.wait_for_records(3)
    await backup.wait_for_records(3)
    await stream.close(timeout=5)
    assert destination.data == backup.data == b"r0\nr1\nr2\n"


class FaultyKinesis:
    """Wraps a real client: the first GetRecords calls answer as a throttling or expiring
    server would (neither kinesalite nor moto throttles; their iterators last past a test)."""

    def __init__(self, client: Any, faults: list[str]) -> None:
        self.client = client
        self.faults = faults
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def get_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.faults:
            code = self.faults.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "simulated"}}, "GetRecords")
        return await self.client.get_records(**kwargs)


async def test_throttling_and_expired_iterators(kinesis: KinesisServer, tmp_path: Path) -> None:
    arn = kinesis.create_stream(shards=1)
    put(kinesis, arn, ["a"], 0, 50)
    stream, destination = _stream(tmp_path, arn)
    source = source_for(kinesis, stream, tmp_path)
    faults = ["ProvisionedThroughputExceededException", "LimitExceededException",
              "ExpiredIteratorException"]  # fmt: skip
    real_open = source.open_clients

    @contextlib.asynccontextmanager
    async def faulty() -> AsyncIterator[tuple[Any, Any]]:
        async with real_open() as (client, dynamodb):
            yield FaultyKinesis(client, faults), dynamodb

    source.open_clients = faulty
    async with running(stream, source):
        await destination.wait_for_records(50, timeout=30)
        put(kinesis, arn, ["a"], 50, 50)
        await until(lambda: len(set(lines(destination))) >= 100)
    assert source.counters.throttled == 2 and source.counters.expired_iterators == 1
    assert_in_order(lines(destination), 100)
    assert len(lines(destination)) == 100  # the new iterator starts after the last record read


async def test_a_full_log_is_waited_out(kinesis: KinesisServer, tmp_path: Path) -> None:
    arn = kinesis.create_stream(shards=1)
    put(kinesis, arn, ["a"], 0, 300)
    stream, destination = _stream(tmp_path, arn, max_undelivered_bytes=2000)
    destination.open.clear()  # deliveries hold: the log fills
    async with running(stream, source_for(kinesis, stream, tmp_path)):
        await until(lambda: stream.counters.throttled_records > 0)
        destination.open.set()
        await until(lambda: len(set(lines(destination))) >= 300)
    assert_in_order(lines(destination), 300)


async def test_put_is_refused_and_describe_shows_the_source(tmp_path: Path) -> None:
    from firehose.api import FirehoseApi
    from firehose.describe import describe
    from firehose.errors import InvalidArgumentError

    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/x"
    stream, _ = _stream(tmp_path, arn)
    api = FirehoseApi.__new__(FirehoseApi)
    api.service = type("S", (), {"streams": {"events": stream}, "account_id": ACCOUNT})()
    with pytest.raises(InvalidArgumentError, match="not permitted on KinesisStreamAsSource"):
        api._writable_stream("events")
    description = describe(stream.config, region="us-east-1", account_id=ACCOUNT, created_at=5.0)
    assert description["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert description["Source"] == {
        "KinesisStreamSourceDescription": {
            "KinesisStreamARN": arn,
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "DeliveryStartTimestamp": 5.0,
        }
    }
