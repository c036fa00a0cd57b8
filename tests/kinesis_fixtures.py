"""Kinesis servers for the source tests: kinesalite and moto, the same tests against both."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firehose.config import DeliveryStreamConfig
from firehose.settings import Settings
from firehose.sources.kinesis import KinesisSource
from firehose.sources.registry import kinesis_source
from firehose.stream import DeliveryStream
from firehose.testing.kinesis_servers import kinesis_client, start_kinesalite
from firehose.testing.servers import S3Server, stop

ACCOUNT = "000000000000"
CREDENTIALS = {
    "aws_access_key_id": "firehose-test",
    "aws_secret_access_key": "firehose-test-secret",
}


@dataclass
class KinesisServer:
    name: str
    endpoint_url: str

    def client(self) -> Any:
        return kinesis_client(self.endpoint_url)

    def create_stream(self, shards: int) -> str:
        """A new active stream; its ARN."""
        name = f"s-{uuid.uuid4().hex[:10]}"
        client = self.client()
        client.create_stream(StreamName=name, ShardCount=shards)
        client.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        return f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}"

    def wait_active(self, name: str) -> None:
        client = self.client()
        for _ in range(200):
            status = client.describe_stream_summary(StreamName=name)
            if status["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.1)
        raise TimeoutError(name)


@pytest.fixture(scope="session")
def kinesalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KinesisServer]:
    url, proc = start_kinesalite(tmp_path_factory.mktemp("kinesalite"))
    try:
        yield KinesisServer("kinesalite", url)
    finally:
        stop(proc)


@pytest.fixture(scope="session", params=["kinesalite", "moto"])
def kinesis(request: pytest.FixtureRequest) -> KinesisServer:
    if request.param == "moto":
        moto: S3Server = request.getfixturevalue("moto_s3")
        return KinesisServer("moto", moto.endpoint_url)
    server: KinesisServer = request.getfixturevalue("kinesalite")
    return server


def kinesis_config(arn: str, name: str = "events", **s3: Any) -> DeliveryStreamConfig:
    return DeliveryStreamConfig.model_validate(
        {
            "DeliveryStreamName": name,
            "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": arn,
                "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            },
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": "arn:aws:s3:::bucket",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                **s3,
            },
        }
    )


def source_for(
    server: KinesisServer,
    stream: DeliveryStream,
    data_dir: Path,
    table: str | None = None,
    **settings: Any,
) -> KinesisSource:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "kinesis_start_position": "TRIM_HORIZON",
        "kinesis_poll_seconds": 0.2,
        "lease_seconds": 1.5,
        **settings,
    }
    source = stream.config.kinesis_source
    assert source is not None
    return kinesis_source(
        Settings(**values), stream, source, table, endpoint_url=server.endpoint_url, **CREDENTIALS
    )
