"""`/ready`, the index, and the status page rendered by a real browser (headless Chromium)
from a running service with puts flowing."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web

from firehose.api import FirehoseApi
from firehose.stream import DeliveryStream
from firehose.telemetry import Telemetry
from firehose.testing.servers import S3Server, free_port
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.e2e import wait_for
from tests.test_metrics import get_json, start

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


async def test_ready_answers_503_until_the_service_is_ready_and_again_when_it_stops() -> None:
    streams: dict[str, DeliveryStream] = {}
    service = SimpleNamespace(
        ready=False, region="us-east-1", account_id="0" * 12, started_at=0.0, streams=streams
    )
    runner = FirehoseApi(service, telemetry=Telemetry(streams, [])).runner()
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def status(path: str) -> int:
                async with session.get(url + path) as answer:
                    return answer.status

            assert await status("/ready") == 503
            assert await status("/health") == 503
            service.ready = True
            assert await status("/ready") == 200
            assert await status("/health") == 200
            service.ready = False  # what Service.stop does first
            assert await status("/ready") == 503
            async with session.get(url + "/") as answer:
                assert answer.status == 200
                assert 'href="/status"' in await answer.text()
            # Only the routes this part serves: any other GET is not found.
            assert await status("/nothing-here") == 404
    finally:
        await runner.cleanup()


def chromium() -> str:
    """The browser; missing, the test fails (CI installs it): a skipped page test proves nothing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: apt-get install -y chromium (.ci/run does)"
    return path


def browse(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--hide-scrollbars", "--virtual-time-budget=8000", *options, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_the_status_page_renders_every_stream_with_its_chart(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"p-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    names = ["clicks", "orders"]
    service = start(
        services,
        tmp_path,
        [s3_stream(name, bucket, Prefix=f"{name}/") for name in names],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url],
        env=seaweedfs.env(),
    )
    assert get_json(f"{service.url}/ready") == {"ready": True}
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(service, names, stop), daemon=True)
    producer.start()
    try:
        # Two points of each chart: the service samples every 5 seconds.
        wait_for(lambda: all(len(s["series"]["time"]) >= 2 for s in status(service)))
        wait_for(lambda: all(s["totals"]["delivered_records"] > 0 for s in status(service)))
        dom = browse(f"{service.url}/status", "--dump-dom").stdout
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        shot.unlink(missing_ok=True)
        browse(f"{service.url}/status", f"--screenshot={shot}", "--window-size=1280,900")
    finally:
        stop.set()
        producer.join(30)
    print(f"status page screenshot: {shot}")
    assert shot.read_bytes().startswith(b"\x89PNG")
    rendered = re.findall(r'<span class="stream-name">([^<]+)</span>', dom)
    assert rendered == names
    charts = re.findall(r"<svg[^>]*class=\"chart\".*?</svg>", dom, re.S)
    assert len(charts) == len(names)
    for chart in charts:
        lines = re.findall(r'<polyline points="([^"]+)"', chart)
        assert len(lines) == 3  # records in, records delivered, freshness
        assert all(len(points.split()) >= 2 for points in lines)
    assert '<div id="problem"></div>' in dom  # every poll of /status.json was read
    assert "s3://" + bucket in dom


def status(service: ServiceProcess) -> list[dict[str, Any]]:
    streams: list[dict[str, Any]] = get_json(f"{service.url}/status.json")["streams"]
    return streams


def produce(service: ServiceProcess, names: list[str], stop: threading.Event) -> None:
    client = service.client()
    n = 0
    while not stop.is_set():
        for name in names:
            records = [f'{{"n": {n + i}}}\n'.encode() for i in range(100)]
            client.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
        n += 100
        time.sleep(0.2)
