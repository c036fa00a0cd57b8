"""Record format conversion throughput: JSON → Parquet (ZSTD) through `firehose serve`, next to
pyarrow alone doing the same conversion.

Service: the clickstream load of bench.ingest (SeaweedFS, --producers concurrent PutRecordBatch
requests for --seconds) into a stream with DataFormatConversionConfiguration (OpenX JSON in,
Parquet ZSTD out with dictionary pages as the baseline writes them, UNCOMPRESSED, --buffer-mib
buffers). Records/s per core is what landed in S3
(counted from the Parquet footers) over the service's CPU seconds up to the end of its SIGTERM
flush: ingest, write-ahead log and upload included.

Baseline, in this process after the service phase: the same records in buffers of the same size,
each read with `pyarrow.json.read_json` and written with `pyarrow.parquet.write_table` (ZSTD),
from and to Arrow's in-memory buffers, over this process's CPU seconds (every thread) for that
work alone.

Also printed: pyarrow alone with its JSON parse on one thread (Arrow's default parses on several,
which costs more CPU in all), and the service's converter alone (`RecordConverter`) on the
baseline's buffers, which tells the conversion's cost apart from the service's ingest.

Peak memory: the service's peak RSS (to exit) above its RSS before the load, against the buffer.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
import pybase64

from bench.clickstream import Body, build_pool
from bench.ingest import MIB, Landed, run_service
from firehose.format_config import DataFormatConversionConfiguration
from firehose.formats.convert import RecordConverter
from firehose.formats.schema import parse_columns
from firehose.testing.servers import S3Server, start_seaweedfs, stop

COLUMNS = [
    ("id", "string"), ("ts", "timestamp"), ("type", "string"), ("user", "string"),
    ("sess", "string"), ("url", "string"), ("ua", "string"), ("ip", "string"),
    ("geo", "string"), ("dur_ms", "int"), ("price", "double"),
]  # fmt: skip
TARGET_RATIO = 0.5
TARGET_MEMORY = 3.0


def conversion_destination(buffer_mib: int) -> dict[str, Any]:
    return {
        "CompressionFormat": "UNCOMPRESSED",
        "BufferingHints": {"SizeInMBs": buffer_mib, "IntervalInSeconds": 60},
        "DataFormatConversionConfiguration": {
            "SchemaConfiguration": {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS]},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            # Dictionary pages on, as pyarrow.parquet.write_table writes them by default: both
            # sides write the same encoding (the API's default is off).
            "OutputFormatConfiguration": {
                "Serializer": {
                    "ParquetSerDe": {"Compression": "ZSTD", "EnableDictionaryCompression": True}
                }
            },
        },
    }


def count_parquet(server: S3Server, bucket: str) -> Landed:
    """Rows of every Parquet object, from its footer."""
    client = server.client()
    landed = Landed()
    for key in server.list_keys(bucket):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        landed.objects += 1
        landed.stored_bytes += len(body)
        landed.records += pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    return landed


def _records(pool: Sequence[Body]) -> list[bytes]:
    return [
        pybase64.b64decode(entry["Data"])
        for body in pool
        for entry in orjson.loads(body.payload)["Records"]
    ]


def _pyarrow_cpu(data: bytes, *, use_threads: bool) -> float:
    """CPU seconds (every thread) of pyarrow alone converting `data`. Arrow's own buffer types,
    as the service uses them: a Python file object in between costs read_json ~10% more."""
    started = time.process_time()
    table = pj.read_json(
        pa.BufferReader(data), read_options=pj.ReadOptions(use_threads=use_threads)
    )
    pq.write_table(table, pa.BufferOutputStream(), compression="zstd")
    return time.process_time() - started


def baseline(
    pool: Sequence[Body], records: int, buffer_mib: int
) -> tuple[int, float, float, float]:
    """(records converted, CPU seconds of pyarrow alone, of pyarrow alone parsing on one
    thread, of the service's converter alone), buffers of `buffer_mib` MiB."""
    source = _records(pool)
    config = DataFormatConversionConfiguration.model_validate(
        conversion_destination(buffer_mib)["DataFormatConversionConfiguration"]
    )
    converter = RecordConverter(config, parse_columns(COLUMNS))
    done, cpu, one_thread_cpu, converter_cpu = 0, 0.0, 0.0, 0.0
    buffer: list[bytes] = []
    size = 0
    index = 0
    while done < records:
        record = source[index % len(source)]
        index += 1
        buffer.append(record)
        size += len(record)
        if size >= buffer_mib * MIB or done + len(buffer) >= records:
            data = b"".join(buffer)
            cpu += _pyarrow_cpu(data, use_threads=True)
            one_thread_cpu += _pyarrow_cpu(data, use_threads=False)
            started = time.process_time()
            converter.convert([(data, [len(record) for record in buffer])])
            converter_cpu += time.process_time() - started
            done += len(buffer)
            buffer, size = [], 0
    return done, cpu, one_thread_cpu, converter_cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.convert", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration (20)")
    parser.add_argument("--producers", type=int, default=8, help="concurrent requests (8)")
    parser.add_argument(
        "--buffer-mib", type=int, default=128, choices=range(64, 129), metavar="64..128",
        help="the stream's BufferingHints SizeInMBs (128)",
    )  # fmt: skip
    parser.set_defaults(profile=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pool = build_pool()
    print(f"JSON → Parquet (ZSTD), buffer {args.buffer_mib} MiB, {args.seconds:g} s of load")
    with tempfile.TemporaryDirectory(prefix="firehose-bench-") as tmp:
        server, weed = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            svc = run_service(
                args, server, weed.pid, Path(tmp) / "service", pool,
                destination=conversion_destination(args.buffer_mib), count=count_parquet,
            )  # fmt: skip
        finally:
            stop(weed)
    landed = svc.landed
    base_records, base_cpu, one_thread_cpu, converter_cpu = baseline(
        pool, max(landed.records, 1), args.buffer_mib
    )
    service_rate = landed.records / svc.cpu_total_s
    base_rate = base_records / base_cpu
    ratio = service_rate / base_rate
    growth = svc.max_rss_mib - svc.rss_start_mib
    print(
        f"service: {svc.load.records:,} records acknowledged, {landed.records:,} in "
        f"{landed.objects} Parquet objects ({landed.stored_bytes / MIB:.1f} MiB), "
        f"{svc.cpu_total_s:.2f} CPU s, exit code {svc.exit_code}"
    )
    print(f"service  records/s per core: {service_rate:,.0f}")
    print(
        f"baseline records/s per core: {base_rate:,.0f} ({base_records:,} records, "
        f"{base_cpu:.2f} CPU s, pyarrow.json.read_json + pyarrow.parquet.write_table)"
    )
    print(f"ratio service/baseline: {ratio:.0%} (target ≥ {TARGET_RATIO:.0%})")
    one_thread_rate = base_records / one_thread_cpu
    print(
        f"pyarrow alone parsing on one thread (as the service does): {one_thread_rate:,.0f} "
        f"records/s per core; service/that: {service_rate / one_thread_rate:.0%}"
    )
    converter_rate = base_records / converter_cpu
    print(
        f"the service's converter alone: {converter_rate:,.0f} records/s per core, "
        f"{converter_rate / base_rate:.0%} of the baseline"
    )
    print(
        f"peak RSS {svc.max_rss_mib:.0f} MiB, {svc.rss_start_mib:.0f} before the load: "
        f"+{growth:.0f} MiB = {growth / args.buffer_mib:.2f}x the {args.buffer_mib} MiB buffer "
        f"(target < {TARGET_MEMORY:g}x)"
    )
    lost = svc.load.records - landed.records
    print("delivery check:", "OK" if lost == 0 else f"{lost} records not landed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
