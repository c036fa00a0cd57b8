"""Dynamic partitioning's cost: the ingest load partitioned over 100 keys by a jq field query,
through `firehose serve`, beside jq itself running the same program over the same records.

The clickstream records get a `site` field with 100 values. In process, on one core: the jq
binding runs the query on every record (the baseline), then the MetadataExtraction fast path
does, then the whole partitioning stage on the fast path (keys, partitions, one run for each
partition of a read of 16k records). Through the service, against a real SeaweedFS: once with
`{site: (.site)}`, which jq runs (the parentheses keep it off the fast path), once with
`{site: .site}`, which takes the fast path.

Targets: the service's jq phase at least 60% of the jq baseline; where the fast path applies,
300k records/s, read as the fast path's keys on one core, the same measure as the jq baseline
(about 90k records/s a core). The stage's rate and the service's delivered rate on the fast
path are printed beside it: the service's is bounded by the rest of delivery (the stage's pipe,
100 partitions' buffers and uploads), not by the keys.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jq
import orjson

from bench.clickstream import RECORDS_PER_BODY, SEED, STREAM, Body, clickstream_record
from bench.ingest import ServiceFigures, run_service
from firehose.batch import RecordRun
from firehose.config import DeliveryStreamConfig
from firehose.testing.servers import start_seaweedfs, stop
from firehose.testing.service_process import s3_stream
from transforms.metadata_extraction import MetadataExtraction
from transforms.processor import ProcessingContext
from transforms.stage import build_router, build_stage

SITES = 100
JQ_QUERY = "{site: (.site)}"
FAST_QUERY = "{site: .site}"


def build_pool(bodies: int = 48) -> list[Body]:
    """Clickstream bodies whose records carry `site`, one of SITES values."""
    rng = random.Random(SEED)
    pool = []
    for index in range(bodies):
        records = []
        for i in range(RECORDS_PER_BODY):
            event = orjson.loads(clickstream_record(rng, index * RECORDS_PER_BODY + i))
            event["site"] = f"site-{rng.randrange(SITES):03d}"
            records.append(orjson.dumps(event) + b"\n")
        items = [{"Data": binascii.b2a_base64(r, newline=False).decode()} for r in records]
        payload = orjson.dumps({"DeliveryStreamName": STREAM, "Records": items})
        lengths = tuple(map(len, records))
        pool.append(Body(payload, lengths, sum(lengths)))
    return pool


def records_of(pool: Sequence[Body]) -> list[bytes]:
    return [
        binascii.a2b_base64(item["Data"])
        for body in pool
        for item in orjson.loads(body.payload)["Records"]
    ]


def in_process_rate(records: list[bytes], seconds: float, keys: Any) -> float:
    """Records/s of `keys(record)` on this core, cycling through `records` for `seconds`."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for record in records:
            keys(record)
        done += len(records)
    return done / (time.perf_counter() - start)


def stage_rate(records: list[bytes], seconds: float, query: str) -> float:
    """Records/s of the partitioning stage on this core: MetadataExtraction, the router and the
    partitioned runs, on reads of 32 log frames of 500 records."""
    config = DeliveryStreamConfig.model_validate(
        s3_stream(
            STREAM,
            "bench",
            BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 60},
            **destination(query),
        )
    )
    context = ProcessingContext(STREAM, f"arn:aws:firehose:us-east-1:0:deliverystream/{STREAM}",
                                "us-east-1")  # fmt: skip
    stage = build_stage(config.destination.processing_configuration, context, build_router(config))
    assert stage is not None
    frames = [records[start : start + 500] for start in range(0, len(records), 500)]
    runs = [
        RecordRun(index * 500, 0, [len(r) for r in frame], memoryview(b"".join(frame)))
        for index, frame in enumerate(frames)
    ]
    reads = [runs[start : start + 32] for start in range(0, len(runs), 32)]

    async def run_reads() -> float:
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for read in reads:
                output = await stage.process(read)
                done += sum(len(run.lengths) for _, run in output.routed) + len(output.failed)
        return done / (time.perf_counter() - start)

    return asyncio.run(run_reads())


def destination(query: str) -> dict[str, Any]:
    return {
        "Prefix": "site=!{partitionKeyFromQuery:site}/!{timestamp:yyyy/MM/dd}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [
                {
                    "Type": "MetadataExtraction",
                    "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                    ],
                }
            ],
        },
    }


def _rate(figures: ServiceFigures) -> float:
    """Records partitioned and delivered per second, to the end of the SIGTERM flush: what the
    stream sustains, not only what the log accepted."""
    return figures.landed.records / (figures.load.seconds + figures.flush_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--buffer-mib", type=int, default=64)
    args = parser.parse_args(argv)
    args.profile = None
    pool = build_pool()
    records = records_of(pool)
    program = jq.compile(JQ_QUERY)
    jq_rate = in_process_rate(records, 5, lambda r: program.input_text(str(r, "utf-8")).all())
    fast = MetadataExtraction(FAST_QUERY)
    assert fast.picker is not None
    fast_rate = in_process_rate(records, 5, fast.picker.keys)
    staged = stage_rate(records, 5, FAST_QUERY)
    print(f"jq binding, one core:       {jq_rate:12,.0f} records/s", flush=True)
    print(f"fast path, one core:        {fast_rate:12,.0f} records/s", flush=True)
    print(f"stage on the fast path:     {staged:12,.0f} records/s, one core", flush=True)
    with tempfile.TemporaryDirectory(prefix="firehose-bench-") as tmp:
        server, weed = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            phases = {}
            for name, query in (("jq", JQ_QUERY), ("fast", FAST_QUERY)):
                print(f"service phase: {name} ({query})", flush=True)
                phases[name] = run_service(
                    args,
                    server,
                    weed.pid,
                    Path(tmp) / name,
                    pool,
                    bucket=f"partitioned-{name}",
                    destination=destination(query),
                )
        finally:
            stop(weed)
    ok = True
    for name, figures in phases.items():
        landed = figures.landed.records == figures.load.records
        ok = ok and landed
        print(
            f"service, {name:4} query:        {_rate(figures):12,.0f} records/s  "
            f"{figures.landed.objects} objects, peak RSS {figures.max_rss_mib:,.0f} MiB, "
            f"CPU {figures.cpu_total_s:.1f} s, landed {'ok' if landed else 'MISMATCH'}"
        )
    jq_share = _rate(phases["jq"]) / jq_rate
    print(f"\nservice with jq / jq binding: {jq_share:.2f} (target >= 0.60)")
    print(f"fast path's keys, one core: {fast_rate:,.0f} records/s (target >= 300,000)")
    print(
        f"with the fast path, the stage on one core: {staged:,.0f} records/s; "
        f"the service delivered {_rate(phases['fast']):,.0f} records/s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
