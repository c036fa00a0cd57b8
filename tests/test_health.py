"""/health tells the truth: a frozen store shows as stalled within seconds, then recovers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from firehose.testing.servers import start_moto, stop
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.e2e import health
from tests.test_service import wait_for


def test_a_frozen_store_shows_as_stalled_then_recovers(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    server, proc = start_moto(tmp_path / "moto")
    try:
        server.create_bucket("frozen")
        stream = s3_stream("f", "frozen", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
        service = ServiceProcess(
            tmp_path / "svc",
            [stream],
            env=server.env(),
            args=["--s3-endpoint-url", server.endpoint_url, "--stall-seconds", "1"],
        )
        services.append(service)
        service.start()
        assert health(service)["status"] == "ok"
        assert health(service)["streams"]["f"]["delivery"] == "idle"

        os.kill(proc.pid, signal.SIGSTOP)  # the store accepts connections but never answers
        try:
            client = service.client()
            client.put_record(DeliveryStreamName="f", Record={"Data": b"held\n"})
            wait_for(lambda: health(service)["streams"]["f"]["delivery"] == "stalled", 15,
                     "the stream to show as stalled")  # fmt: skip
            answer = health(service)
            assert answer["status"] == "degraded"
            assert answer["streams"]["f"]["oldest_undelivered_age_seconds"] >= 1
            assert answer["streams"]["f"]["accepting"] is True  # producers are still served
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: server.list_keys("frozen"), 90, "delivery once the store answers")
        wait_for(lambda: health(service)["status"] == "ok", 30, "health back to ok")
        assert service.terminate() == 0
        [key] = server.list_keys("frozen")
        assert server.get("frozen", key) == b"held\n"
    finally:
        stop(proc)
