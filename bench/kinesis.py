"""Kinesis source throughput: records/s from a pre-filled 4-shard kinesalite stream to S3.

A stream is filled with --records records of ~200 bytes. The baseline, in this process, reads
every shard from TRIM_HORIZON with GetRecords (aiobotocore, 10,000 records a call, as fast as
the server answers) and does nothing else. Then `firehose serve` reads the same shards into a
SeaweedFS bucket; its time runs from healthy until S3 holds every record's bytes. Printed:
records/s of both, and service/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from firehose.testing.kinesis_servers import kinesis_client, start_kinesalite
from firehose.testing.servers import start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess

SHARDS = 4
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}


def fill(url: str, name: str, records: int) -> int:
    """Put `records` records; their total bytes."""

    def batch(start: int) -> int:
        client: Any = kinesis_client(url)
        entries = [
            {"Data": (f"{i:09d} " + "x" * 189 + "\n").encode(), "PartitionKey": f"p{i}"}
            for i in range(start, min(start + 500, records))
        ]
        assert client.put_records(StreamName=name, Records=entries)["FailedRecordCount"] == 0
        return sum(len(entry["Data"]) for entry in entries)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(batch, range(0, records, 500)))


async def baseline(url: str, name: str, records: int) -> float:
    """Seconds to read every record of every shard with GetRecords alone."""
    session = get_session()
    async with session.create_client(
        "kinesis", endpoint_url=url, region_name="us-east-1", **CREDENTIALS
    ) as client:
        shards = (await client.list_shards(StreamName=name))["Shards"]
        started = time.perf_counter()

        async def read(shard_id: str) -> int:
            iterator = (
                await client.get_shard_iterator(
                    StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            count = 0
            while True:
                answer = await client.get_records(ShardIterator=iterator, Limit=10_000)
                count += len(answer["Records"])
                iterator = answer["NextShardIterator"]
                if not answer["Records"]:
                    return count

        counts = await asyncio.gather(*(read(shard["ShardId"]) for shard in shards))
        assert sum(counts) == records, counts
        return time.perf_counter() - started


def service_run(workdir: Path, url: str, name: str, s3: Any, total_bytes: int) -> float:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    stream = {
        "DeliveryStreamName": "bench",
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}",
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
        },
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 1},
        },
    }
    env = {**s3.env(), "AWS_ENDPOINT_URL_KINESIS": url}
    args = ["--s3-endpoint-url", s3.endpoint_url, "--kinesis-start-position", "TRIM_HORIZON"]
    service = ServiceProcess(workdir, [stream], env=env, args=args)
    service.start(wait=False)
    try:
        service.wait_healthy()
        started = time.perf_counter()
        client = s3.client()
        while True:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            stored = sum(o["Size"] for page in pages for o in page.get("Contents", []))
            if stored >= total_bytes:
                return time.perf_counter() - started
            time.sleep(0.05)
    finally:
        service.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-kinesis-") as tmp:
        work = Path(tmp)
        url, kinesalite = start_kinesalite(work / "kinesalite")
        s3, weed = start_seaweedfs(work / "seaweedfs")
        try:
            name = "bench"
            client: Any = kinesis_client(url)
            client.create_stream(StreamName=name, ShardCount=SHARDS)
            client.get_waiter("stream_exists").wait(StreamName=name)
            total_bytes = fill(url, name, args.records)
            base_s = asyncio.run(baseline(url, name, args.records))
            service_s = service_run(work / "service", url, name, s3, total_bytes)
        finally:
            stop(kinesalite)
            stop(weed)
    figures = {
        "records": args.records,
        "baseline_records_per_s": round(args.records / base_s),
        "service_records_per_s": round(args.records / service_s),
        "service_over_baseline": round(base_s / service_s, 3),
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
