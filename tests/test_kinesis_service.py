"""The Kinesis source in real `firehose serve` processes: moto serves Kinesis, DynamoDB and S3.

Killed with SIGKILL and restarted, nothing is lost (repeats only after the last checkpoint);
two instances share four shards through a DynamoDB lease table, and when one is killed the
other takes its shards over.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess
from tests.kinesis_fixtures import ACCOUNT, KinesisServer

pytestmark = pytest.mark.timeout(240)


def service(workdir: Path, moto: S3Server, arn: str, bucket: str, *args: str) -> ServiceProcess:
    stream = {
        "DeliveryStreamName": "fromkinesis",
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": arn,
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
        },
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    }
    env = {
        **moto.env(),
        "AWS_ENDPOINT_URL_KINESIS": moto.endpoint_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint_url,
    }
    return ServiceProcess(
        workdir,
        [stream],
        env=env,
        args=["--s3-endpoint-url", moto.endpoint_url, "--kinesis-start-position",
              "TRIM_HORIZON", "--kinesis-poll-seconds", "0.2", "--lease-seconds", "2", *args],
    )  # fmt: skip


def delivered(moto: S3Server, bucket: str) -> list[str]:
    return [
        line
        for key in moto.list_keys(bucket)
        for line in moto.get(bucket, key).decode().splitlines()
    ]


def put(kinesis: KinesisServer, name: str, start: int, count: int) -> None:
    client = kinesis.client()
    for i in range(start, start + count, 250):
        records = [{"Data": f"r{j}\n".encode(), "PartitionKey": f"p{j % 16}"}
                   for j in range(i, min(i + 250, start + count))]  # fmt: skip
        assert client.put_records(StreamName=name, Records=records)["FailedRecordCount"] == 0


def wait_for(moto: S3Server, bucket: str, count: int, timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        got = delivered(moto, bucket)
        if len(set(got)) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


@pytest.fixture
def setup(moto_s3: S3Server) -> tuple[S3Server, KinesisServer, str, str, str]:
    kinesis = KinesisServer("moto", moto_s3.endpoint_url)
    arn = kinesis.create_stream(shards=4)
    bucket = f"k-{uuid.uuid4().hex[:10]}"
    moto_s3.create_bucket(bucket)
    return moto_s3, kinesis, arn, arn.rsplit("/", 1)[1], bucket


def test_sigkill_then_restart_loses_nothing(setup: Any, tmp_path: Path) -> None:
    moto, kinesis, arn, name, bucket = setup
    first = service(tmp_path, moto, arn, bucket).start()
    try:
        put(kinesis, name, 0, 2000)
        wait_for(moto, bucket, 500)
        first.kill()
        put(kinesis, name, 2000, 2000)
        again = service(tmp_path, moto, arn, bucket).start()
        got = wait_for(moto, bucket, 4000)
        assert again.terminate() == 0
    finally:
        first.ensure_stopped()
    assert set(got) == {f"r{i}" for i in range(4000)}
    # Repeats only of what came after the last checkpoint: far fewer than were read.
    assert len(got) - 4000 < 2000


def test_two_instances_share_shards_and_take_over(setup: Any, tmp_path: Path) -> None:
    moto, kinesis, arn, name, bucket = setup
    table = f"leases-{uuid.uuid4().hex[:8]}"
    one = service(tmp_path / "one", moto, arn, bucket, "--lease-table", table).start()
    two = service(tmp_path / "two", moto, arn, bucket, "--lease-table", table).start()
    try:
        put(kinesis, name, 0, 2000)
        wait_for(moto, bucket, 2000)
        owners = _owners(moto, table)
        assert len(owners) == 4 and len(set(owners.values())) == 2, owners
        one.kill()
        put(kinesis, name, 2000, 2000)
        got = wait_for(moto, bucket, 4000)
        assert len(set(_owners(moto, table).values())) == 1
        assert two.terminate() == 0
    finally:
        one.ensure_stopped()
        two.ensure_stopped()
    assert set(got) == {f"r{i}" for i in range(4000)}


def _owners(moto: S3Server, table: str) -> dict[str, str]:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=moto.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S", "") for item in items}
