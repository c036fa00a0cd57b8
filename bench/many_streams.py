"""Start-up cost of many S3 streams: 200 streams against one, in the same run.

Prints the seconds until every stream is ready, the RSS, the threads and the open files, for
1 stream (the baseline) and for N. No store is contacted: start-up builds clients, opens logs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

from firehose.config import DeliveryStreamConfig
from firehose.service import Service
from firehose.settings import Settings


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


async def start_streams(count: int) -> dict[str, float]:
    configs = [
        DeliveryStreamConfig.model_validate(
            {"name": f"s{i}", "s3": {"bucket": "b", "endpoint_url": "http://127.0.0.1:9"}}
        )
        for i in range(count)
    ]
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        service = Service(Settings(data_dir=Path(data_dir), port=0), configs)
        await service.start()
        figures = {
            "seconds": time.perf_counter() - started,
            "rss_mib": _rss_mib(),
            "threads": threading.active_count(),
            "open_files": len(os.listdir("/proc/self/fd")),
        }
        await service.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=200)
    count = parser.parse_args().streams
    baseline = asyncio.run(start_streams(1))
    many = asyncio.run(start_streams(count))
    for label, figures in (("1 stream", baseline), (f"{count} streams", many)):
        print(
            f"{label:>12}: ready in {figures['seconds']:.2f} s, RSS {figures['rss_mib']:.0f} MiB, "
            f"{figures['threads']:.0f} threads, {figures['open_files']:.0f} open files"
        )
    print(
        f"{count} streams / 1: start-up x{many['seconds'] / baseline['seconds']:.2f}, "
        f"RSS x{many['rss_mib'] / baseline['rss_mib']:.2f}"
    )


if __name__ == "__main__":
    main()
