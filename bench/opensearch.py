"""OpenSearch delivery rate: records/s indexed in osmem-server through `firehose serve`, against
a baseline that makes the same `_bulk` calls directly with the same client, in the same run.

The service phase sends clickstream JSON with PutRecordBatch (several producer threads) and
times until the cluster counts every record; the baseline posts the same records as `_bulk`
bodies of the same size with aiohttp, one at a time as a stream delivers, and times the same.
Run as `python -m bench.opensearch [--records N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

from bench.clickstream import clickstream_record
from firehose.testing.opensearch_server import SearchServer, start_osmem
from firehose.testing.servers import start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess

MIB = 1024 * 1024
PUT_RECORDS = 500  # records per PutRecordBatch
PRODUCERS = 4


def make_records(count: int) -> list[bytes]:
    rng = random.Random(7)
    return [clickstream_record(rng, seq) for seq in range(count)]


def wait_count(search: SearchServer, index: str, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while search.count(index) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{index}: {search.count(index)} of {expected} documents")
        time.sleep(0.05)


def service_rate(
    search: SearchServer, env: dict[str, str], records: list[bytes], buffer_mib: int
) -> float:
    """Records/s from the first PutRecordBatch to the last document counted."""
    index = "bench-service"
    stream = {
        "DeliveryStreamName": "bench",
        "AmazonopensearchserviceDestinationConfiguration": {
            "ClusterEndpoint": search.url,
            "IndexName": index,
            "IndexRotationPeriod": "NoRotation",
            "BufferingHints": {"SizeInMBs": buffer_mib, "IntervalInSeconds": 1},
            "S3Configuration": {"BucketARN": "arn:aws:s3:::bench-backup"},
        },
    }
    with tempfile.TemporaryDirectory() as workdir:
        service = ServiceProcess(Path(workdir), [stream], env=env)
        service.start()
        try:
            chunks = [records[i : i + PUT_RECORDS] for i in range(0, len(records), PUT_RECORDS)]
            clients = [service.client() for _ in range(PRODUCERS)]

            def send(part: int) -> None:
                for chunk in chunks[part::PRODUCERS]:
                    answer = clients[part].put_record_batch(
                        DeliveryStreamName="bench", Records=[{"Data": r} for r in chunk]
                    )
                    assert answer["FailedPutCount"] == 0, answer

            started = time.perf_counter()
            with ThreadPoolExecutor(PRODUCERS) as pool:
                list(pool.map(send, range(PRODUCERS)))
            wait_count(search, index, len(records))
            elapsed = time.perf_counter() - started
        finally:
            service.terminate()
    return len(records) / elapsed


async def _post_all(url: str, bodies: list[bytes]) -> None:
    headers = {"Content-Type": "application/x-ndjson"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for body in bodies:
            async with session.post(f"{url}/_bulk", data=body) as response:
                answer = await response.read()
                assert response.status == 200 and b'"errors":false' in answer, answer[:300]


def baseline_rate(search: SearchServer, records: list[bytes], buffer_mib: int) -> float:
    """Records/s of the same documents posted directly, bodies built while timed."""
    index = "bench-baseline"
    started = time.perf_counter()
    bodies: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for seq, record in enumerate(records):
        parts.append(b'{"index":{"_index":"%s","_id":"b-%d-0"}}\n' % (index.encode(), seq))
        parts.append(record)
        size += len(record)
        if size >= buffer_mib * MIB:
            bodies.append(b"".join(parts))
            parts, size = [], 0
    if parts:
        bodies.append(b"".join(parts))
    asyncio.run(_post_all(search.url, bodies))
    wait_count(search, index, len(records))
    return len(records) / (time.perf_counter() - started)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--buffer-mib", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    records = make_records(args.records)
    mib = sum(map(len, records)) / MIB
    with tempfile.TemporaryDirectory() as workdir:
        s3, s3_proc = start_seaweedfs(Path(workdir))
        search, search_proc = start_osmem()
        try:
            s3.create_bucket("bench-backup")
            env: dict[str, Any] = s3.env()
            base = baseline_rate(search, records, args.buffer_mib)
            served = service_rate(search, env, records, args.buffer_mib)
        finally:
            stop(search_proc)
            stop(s3_proc)
    print(f"{args.records} records, {mib:.1f} MiB, buffers of {args.buffer_mib} MiB")
    print(f"baseline (direct _bulk, aiohttp): {base:10,.0f} records/s")
    print(f"through firehose serve:           {served:10,.0f} records/s")
    print(f"ratio: {served / base:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
