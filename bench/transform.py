"""The transform hook's cost: the `make bench` load through an identity transform run in worker
processes, beside the plain path, in the same run.

Both phases run `firehose serve` against a real SeaweedFS with the same GZIP stream and the same
PutRecordBatch bodies; the transform phase adds a `Lambda` processor whose function is
bench/identity.py (decode each record, encode it again, answer Ok) in the default process pool.
It prints records/s, MiB/s, p99 latency, peak RSS (against the buffer size) and CPU of each, the
ratios, and checks that every acknowledged record landed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.clickstream import build_pool
from bench.ingest import MIB, ServiceFigures, run_service
from bench.measure import percentile
from firehose.testing.servers import start_seaweedfs, stop

HANDLER = f"{Path(__file__).with_name('identity.py')}:handler"
TRANSFORM = {
    "ProcessingConfiguration": {
        "Enabled": True,
        "Processors": [
            {
                "Type": "Lambda",
                "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": HANDLER}],
            }
        ],
    }
}


def _row(name: str, figures: ServiceFigures, buffer_mib: int) -> dict[str, float]:
    load = figures.load
    return {
        "records/s": load.records / load.seconds,
        # What was processed and delivered, to the end of the SIGTERM flush: the sustained rate.
        "delivered/s": figures.landed.records / (load.seconds + figures.flush_s),
        "MiB/s": load.data_bytes / MIB / load.seconds,
        "p99 ms": percentile(load.latencies_ms, 0.99),
        "peak RSS MiB": figures.max_rss_mib,
        "growth / buffer": (figures.max_rss_mib - figures.rss_start_mib) / buffer_mib,
        "CPU s": figures.cpu_total_s,
        "landed ok": float(figures.landed.records == load.records),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--buffer-mib", type=int, default=64)
    args = parser.parse_args(argv)
    args.profile = None
    pool = build_pool()
    with tempfile.TemporaryDirectory(prefix="firehose-bench-") as tmp:
        server, weed = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            print("plain phase", flush=True)
            plain = run_service(args, server, weed.pid, Path(tmp) / "plain", pool)
            print("transform phase", flush=True)
            transformed = run_service(
                args,
                server,
                weed.pid,
                Path(tmp) / "transform",
                pool,
                bucket="transformed",
                destination=TRANSFORM,
            )
        finally:
            stop(weed)
    rows = {
        "plain": _row("plain", plain, args.buffer_mib),
        "identity transform": _row("transform", transformed, args.buffer_mib),
    }
    names = list(rows["plain"])
    print(f"\n{'':22}" + "".join(f"{name:>16}" for name in names))
    for label, row in rows.items():
        print(f"{label:22}" + "".join(f"{row[name]:>16,.2f}" for name in names))
    for label, figures in (("plain", plain), ("identity transform", transformed)):
        print(
            f"{label}: acknowledged {figures.load.records:,}, landed {figures.landed.records:,}; "
            f"undelivered when the load stopped {figures.backlog_mib:.1f} MiB, SIGTERM to exit "
            f"{figures.flush_s:.1f} s (exit code {figures.exit_code})"
        )
    ratio = rows["identity transform"]["records/s"] / rows["plain"]["records/s"]
    sustained = rows["identity transform"]["delivered/s"] / rows["plain"]["delivered/s"]
    print(
        f"\ntransform / plain: accepted records/s {ratio:.2f}, delivered records/s {sustained:.2f}"
    )
    return 0 if all(row["landed ok"] for row in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
