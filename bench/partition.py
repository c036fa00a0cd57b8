"""Dynamic partitioning's cost: the ingest load partitioned over 100 keys by a jq field query,
through `firehose serve`, beside jq itself running the same program over the same records.

The clickstream records get a `site` field with 100 values. In process, on one core: the jq
binding runs the query on every record (the baseline), then the MetadataExtraction fast path
does. Through the service, against a real SeaweedFS: once with `{site: (.site)}`, which jq runs
(the parentheses keep it off the fast path), once with `{site: .site}`, which takes the fast
path. Targets: the jq phase at least 60% of the jq baseline, the fast phase 300k records/s.
"""

from __future__ import annotations

import argparse
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
from firehose.testing.servers import start_seaweedfs, stop
from transforms.metadata_extraction import MetadataExtraction

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
    print(f"jq binding, one core:       {jq_rate:12,.0f} records/s", flush=True)
    print(f"fast path, one core:        {fast_rate:12,.0f} records/s", flush=True)
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
    print(f"service with fast path: {_rate(phases['fast']):,.0f} records/s (target >= 300,000)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
