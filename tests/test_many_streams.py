"""Many streams are cheap: streams writing to one store share its client and upload thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from firehose.config import DeliveryStreamConfig
from firehose.service import Service
from firehose.settings import Settings
from firehose.testing.servers import S3Server

STREAMS = 200


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


async def test_two_hundred_s3_streams_share_one_client(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    configs = [
        DeliveryStreamConfig.model_validate(
            {
                "name": f"s{index}",
                "s3": {
                    "bucket": bucket,
                    "prefix": f"s{index}/",
                    "buffering": {"size_mib": 1, "interval_seconds": 0},
                },
            }
        )
        for index in range(STREAMS)
    ]
    threads_before, rss_before = threading.active_count(), rss_mib()
    service = Service(Settings(data_dir=tmp_path, port=0), configs)
    await service.start()
    try:
        stores = {id(s.destination.store._shared) for s in service.streams.values()}  # type: ignore[attr-defined]
        assert len(stores) == 1
        # A thread per stream would be 200 more; the pool of encoders, the shared upload
        # loop and the log's threads for the few streams that wrote stay far below.
        for index in (0, 99, 199):
            await service.streams[f"s{index}"].put([f"record of s{index}\n".encode()])
        assert threading.active_count() - threads_before < 20
        assert rss_mib() - rss_before < 400
    finally:
        assert await service.stop()
    for index in (0, 99, 199):
        [key] = s3_server.list_keys(bucket, prefix=f"s{index}/")
        assert s3_server.get(bucket, key) == f"record of s{index}\n".encode()
