"""The HTTP endpoint destination's throughput against posting the same batches directly.

A receiver in its own process acknowledges each POST at once (it reads the whole body and
answers `{"requestId", "timestamp"}`). The same batches go, in alternating one-second rounds so
that other load on the machine falls on all alike:
- through `HttpDestination.deliver` (body built per request: base64, JSON, gzip if asked);
- the baseline: posted directly with an aiohttp session set up the same way, each body built
  the plain way (`orjson.dumps` of a dict per record, base64 by pybase64);
- the transport alone: bodies built before the clock starts, what nothing can beat.
It prints records/s and MiB/s (of record data) for each, and destination / baseline (target:
at least 0.7).

    python -m bench.http_endpoint [--seconds 10] [--record-bytes 500] [--gzip]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson
import pybase64
from aiohttp import web

from destinations.http_body import encode_records, request_body
from destinations.http_endpoint import HttpDestination, request_id_of
from firehose.batch import Batch, BatchBuilder, RecordRun
from firehose.compression import get_codec
from firehose.config import DeliveryStreamConfig, HttpEndpointDestination
from firehose.testing.servers import free_port

MIB = 1024 * 1024
ARN = "arn:aws:firehose:us-east-1:000000000000:deliverystream/bench"
GZIP = get_codec("GZIP")


def _serve(port: int) -> None:
    """The receiver: acknowledge every request once its body is read."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        request_id = request.headers["X-Amz-Firehose-Request-Id"]
        body = orjson.dumps({"requestId": request_id, "timestamp": time.time_ns() // 1_000_000})
        return web.Response(body=body, content_type="application/json")

    app = web.Application(client_max_size=256 * MIB)
    app.router.add_post("/", handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _batches(count: int, record_bytes: int, size_mib: int) -> list[Batch]:
    """`count` batches cut as the stream would (size hint and 10,000-record cap)."""
    per_batch = min(10_000, size_mib * MIB // record_bytes)
    batches = []
    for index in range(count):
        records = [
            f"{index:06d}-{i:07d}-".encode().ljust(record_bytes, b"x") for i in range(per_batch)
        ]
        builder = BatchBuilder(size_mib * MIB, max_records=10_000, object_id=lambda s: f"b{s}")
        data = memoryview(b"".join(records))
        first = index * per_batch + 1
        full = builder.add(RecordRun(first, 1000, [len(r) for r in records], data))
        batches += full or [builder.seal()]
    return batches


@dataclass
class Figures:
    records: int
    data_bytes: int
    seconds: float

    def row(self, label: str) -> str:
        return (
            f"{label:34}{self.records / self.seconds:>14,.0f}"
            f"{self.data_bytes / MIB / self.seconds:>12,.1f}"
        )


def _destination(url: str, gzip: bool) -> HttpDestination:
    config = DeliveryStreamConfig.model_validate(
        {
            "DeliveryStreamName": "bench",
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": {"Url": url, "AccessKey": "bench"},
                "RequestConfiguration": {"ContentEncoding": "GZIP" if gzip else "NONE"},
                "S3Configuration": {"BucketARN": "arn:aws:s3:::unused"},
            },
        }
    )
    assert isinstance(config.destination, HttpEndpointDestination)
    return HttpDestination(config.destination, source_arn=ARN)


def _plain_body(batch: Batch, gzip: bool) -> bytes:
    """The body as a direct client would build it: a dict per record."""
    document = {
        "requestId": request_id_of(batch),
        "timestamp": time.time_ns() // 1_000_000,
        "records": [{"data": pybase64.b64encode(r.data).decode()} for r in batch.records()],
    }
    body = orjson.dumps(document)
    return GZIP.compress([body], "") if gzip else body


class Direct:
    """Posts batches with one pooled aiohttp session, as the destination does."""

    def __init__(self, gzip: bool) -> None:
        self.headers = {
            "Content-Type": "application/json",
            "X-Amz-Firehose-Protocol-Version": "1.0",
        }
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )

    async def post(self, url: str, batch: Batch, body: bytes) -> None:
        headers = {**self.headers, "X-Amz-Firehose-Request-Id": request_id_of(batch)}
        async with self.session.post(url, data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200


async def _rounds(url: str, batches: list[Batch], seconds: float, gzip: bool) -> list[Figures]:
    """Alternate one-second rounds of each way until each has had `seconds`."""
    destination = _destination(url, gzip)
    await destination.start()
    direct = Direct(gzip)
    prebuilt = [request_body(encode_records(b), request_id_of(b), 0, gzip=gzip) for b in batches]

    async def through(batch: Batch, index: int) -> None:
        await destination.deliver(batch)

    async def baseline(batch: Batch, index: int) -> None:
        await direct.post(url, batch, _plain_body(batch, gzip))

    async def transport(batch: Batch, index: int) -> None:
        await direct.post(url, batch, prebuilt[index])

    ways = [through, baseline, transport]
    figures = [Figures(0, 0, 0.0) for _ in ways]
    try:
        while min(f.seconds for f in figures) < seconds:
            for way, figure in zip(ways, figures, strict=True):
                start = time.perf_counter()
                while time.perf_counter() - start < 1.0:
                    for index, batch in enumerate(batches):
                        await way(batch, index)
                        figure.records += batch.record_count
                        figure.data_bytes += batch.size_bytes
                figure.seconds += time.perf_counter() - start
    finally:
        await destination.close()
        await direct.session.close()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per way")
    parser.add_argument("--record-bytes", type=int, default=500)
    parser.add_argument("--size-mib", type=int, default=5, help="the BufferingHints size")
    parser.add_argument("--gzip", action="store_true", help="ContentEncoding GZIP")
    args = parser.parse_args(argv)
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,))
    receiver.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        batches = _batches(4, args.record_bytes, args.size_mib)
        asyncio.run(_wait_listening(url))
        through, baseline, transport = asyncio.run(_rounds(url, batches, args.seconds, args.gzip))
    finally:
        receiver.terminate()
        receiver.join(10)
    per_batch = batches[0].record_count
    print(
        f"{per_batch} records of {args.record_bytes} B a request"
        f"{', GZIP' if args.gzip else ''}; {args.seconds:g} s each"
    )
    print(f"{'':34}{'records/s':>14}{'MiB/s':>12}")
    print(through.row("HttpDestination.deliver"))
    print(baseline.row("direct post (dict per record)"))
    print(transport.row("direct post (bodies prebuilt)"))
    ratio = through.records / through.seconds / (baseline.records / baseline.seconds)
    ceiling = through.records / through.seconds / (transport.records / transport.seconds)
    print(f"\ndestination / direct: {ratio:.2f} (target >= 0.70)")
    print(f"destination / transport alone: {ceiling:.2f}")
    return 0


async def _wait_listening(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the receiver did not start")


if __name__ == "__main__":
    sys.exit(main())
