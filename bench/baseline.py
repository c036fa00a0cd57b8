"""The baseline: only the work no Firehose-like service can avoid, in a process of its own.

Parse each PutRecordBatch body (orjson, then pybase64's strict decode per record, as the service
does: the fastest decode there is), gzip every buffer of
--buffer-mib with the service's own codec in a thread, upload it to S3 with aiobotocore. Run as
`python -m bench.baseline`, a job as JSON on stdin, its figures as JSON on stdout.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import pybase64
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.clickstream import Body, build_pool, pool_digest
from bench.measure import cpu_seconds, die_with_parent, own_cpu_seconds, percentile, status_mib
from firehose.compression import Codec, get_codec
from firehose.testing.servers import S3Server

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench-baseline"


@dataclass
class BaselineFigures:
    records: int = 0
    data_bytes: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    decode_s: float = 0.0
    decode_p50_ms: float = 0.0
    decode_p99_ms: float = 0.0
    decode_max_ms: float = 0.0
    gzip_cpu_s: float = 0.0  # thread CPU of the compressing threads
    upload_s: float = 0.0  # wall time inside put_object
    objects: int = 0
    stored_bytes: int = 0
    rss_before_mib: float = 0.0
    vm_hwm_mib: float = 0.0
    s3_cpu_s: float = 0.0


def _timed_compress(codec: Codec, chunks: list[bytes]) -> tuple[bytes, float]:
    started = time.thread_time()
    body = codec.compress(chunks, "")
    return body, time.thread_time() - started


async def _deliver(
    s3: Any,
    bucket: str,
    chunks: list[bytes],
    encoder: ThreadPoolExecutor,
    figures: BaselineFigures,
) -> None:
    """Gzip one buffer off the loop, then upload it: what one flush of the service does."""
    loop = asyncio.get_running_loop()
    body, cpu = await loop.run_in_executor(encoder, _timed_compress, get_codec("GZIP"), chunks)
    figures.gzip_cpu_s += cpu
    started = time.perf_counter()
    await s3.put_object(Bucket=bucket, Key=f"baseline/{figures.objects:05d}.gz", Body=body)
    figures.upload_s += time.perf_counter() - started
    figures.objects += 1
    figures.stored_bytes += len(body)


async def _decode_and_flush(
    job: dict[str, Any], pool: Sequence[Body], s3: Any, figures: BaselineFigures
) -> list[float]:
    """Parse bodies in turn on the loop; hand every full buffer to one flush at a time."""
    b64decode = pybase64.b64decode
    latencies: list[float] = []
    chunks: list[bytes] = []
    size = 0
    flushing: asyncio.Task[None] | None = None
    deadline = time.perf_counter() + job["seconds"]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as encoder:
        for turn in range(job["requests"]):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            items = orjson.loads(pool[turn % len(pool)].payload)["Records"]
            records = [b64decode(item["Data"], validate=True) for item in items]
            latencies.append(time.perf_counter() - started)
            chunks.append(b"".join(records))
            size += len(chunks[-1])
            figures.records += len(records)
            figures.data_bytes += len(chunks[-1])
            if size >= job["buffer_bytes"]:
                if flushing is not None:
                    await flushing
                flush = _deliver(s3, job["bucket"], chunks, encoder, figures)
                flushing = asyncio.create_task(flush)
                chunks, size = [], 0
            await asyncio.sleep(0)  # let the upload move, as a server does between requests
        if flushing is not None:
            await flushing
        if chunks:
            await _deliver(s3, job["bucket"], chunks, encoder, figures)
    return latencies


async def run_baseline(job: dict[str, Any], pool: Sequence[Body]) -> BaselineFigures:
    figures = BaselineFigures()
    config = AioConfig(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    async with get_session().create_client(
        "s3",
        endpoint_url=job["endpoint_url"],
        aws_access_key_id=job["access_key"],
        aws_secret_access_key=job["secret_key"],
        region_name=job["region"],
        config=config,
    ) as s3:
        figures.rss_before_mib = status_mib("self", "VmRSS")
        cpu, started = own_cpu_seconds(), time.perf_counter()
        latencies = await _decode_and_flush(job, pool, s3, figures)
        figures.seconds = time.perf_counter() - started
        figures.cpu_s = own_cpu_seconds() - cpu
    figures.vm_hwm_mib = status_mib("self", "VmHWM")
    figures.decode_s = sum(latencies)
    figures.decode_p50_ms = percentile(latencies, 0.50) * 1000
    figures.decode_p99_ms = percentile(latencies, 0.99) * 1000
    figures.decode_max_ms = max(latencies, default=math.nan) * 1000
    return figures


def measure(
    server: S3Server,
    s3_pid: int,
    pool: Sequence[Body],
    *,
    requests: int,
    buffer_mib: int,
    seconds: float,
) -> BaselineFigures:
    """Put `requests` bodies of `pool` (in turn) through the baseline in a fresh process."""
    server.create_bucket(BUCKET)
    job = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "region": server.region,
        "bucket": BUCKET,
        "requests": max(requests, len(pool)),
        "buffer_bytes": buffer_mib * MIB,
        "seconds": seconds,
        "digest": pool_digest(pool),
    }
    s3_start = cpu_seconds(s3_pid)
    done = subprocess.run(
        [sys.executable, "-m", "bench.baseline"],
        input=json.dumps(job).encode(),
        stdout=subprocess.PIPE,
        cwd=REPO,
        check=True,
        timeout=seconds + 90,
        preexec_fn=die_with_parent,
    )
    figures = BaselineFigures(**json.loads(done.stdout.splitlines()[-1]))
    figures.s3_cpu_s = cpu_seconds(s3_pid) - s3_start
    return figures


def main() -> None:
    job = json.load(sys.stdin)
    pool = build_pool()
    if pool_digest(pool) != job["digest"]:
        raise SystemExit("bench.baseline: the request pool differs from the benchmark's")
    figures = asyncio.run(run_baseline(job, pool))
    print(json.dumps(asdict(figures)))


if __name__ == "__main__":
    main()
