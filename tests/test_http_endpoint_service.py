"""The HTTP endpoint destination through `firehose serve`: an endpoint down for longer than the
retry window, a SIGKILL mid-delivery, and AllData; after each, every acknowledged record is
either delivered or in the backup bucket, and none twice but by a retried request id."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firehose.testing.http_receiver import HttpReceiver
from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess
from tests.e2e import acknowledged, wait_for, wait_for_counters

SECRET = "e2e-secret-access-key"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(access_key=SECRET).start()
    yield server
    server.stop()


def http_stream(url: str, bucket: str, **section: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "h",
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": url, "Name": "receiver", "AccessKey": SECRET},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "S3Configuration": {
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "all/",
                "ErrorOutputPrefix": "failed/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
            **section,
        },
    }


def filed(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key in server.list_keys(bucket, "failed/")
        for line in server.get(bucket, key).splitlines()
    ]


def check_count(
    receiver: HttpReceiver, server: S3Server, bucket: str, acknowledged: list[bytes]
) -> tuple[list[bytes], list[bytes]]:
    """Every acknowledged record delivered or filed; a record seen twice only in requests that
    share a request id (a retry the endpoint may drop). Returns (delivered, filed)."""
    assert receiver.problems == []
    by_request: dict[str, list[bytes]] = {}
    for request in receiver.acknowledged():
        by_request.setdefault(request.request_id, request.records)
    delivered = [record for records in by_request.values() for record in records]
    failed = [base64.b64decode(record["rawData"]) for record in filed(server, bucket)]
    counts = Counter(delivered + failed)
    assert set(counts) == set(acknowledged)
    assert [record for record, count in counts.items() if count > 1] == []
    return delivered, failed


def put(service: ServiceProcess, records: list[bytes]) -> list[bytes]:
    return acknowledged(service, "h", records)


def test_an_endpoint_down_past_the_window_files_records_and_delivery_goes_on(
    seaweedfs: S3Server, receiver: HttpReceiver, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"http-down-{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    seaweedfs.create_bucket(bucket)
    stream = http_stream(receiver.url, bucket, RetryOptions={"DurationInSeconds": 3})
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    receiver.default = "500"
    acknowledged = put(service, [f"down-{i}\n".encode() for i in range(300)])
    wait_for(lambda: len(filed(seaweedfs, bucket)) == 300)
    attempts = len(receiver.received)
    assert attempts >= 3 and len({r.request_id for r in receiver.received}) == 1
    receiver.default = "ok"
    acknowledged += put(service, [f"up-{i}\n".encode() for i in range(300)])
    wait_for(lambda: len(receiver.records()) == 300)
    health = wait_for_counters(service, "h", {"DeliveryToHttpEndpoint.FailedRecords": 300})
    description = service.client().describe_delivery_stream(DeliveryStreamName="h")
    assert service.terminate() == 0
    delivered, failed = check_count(receiver, seaweedfs, bucket, acknowledged)
    assert sorted(delivered) == sorted(r for r in acknowledged if r.startswith(b"up-"))
    assert sorted(failed) == sorted(r for r in acknowledged if r.startswith(b"down-"))
    [error] = filed(seaweedfs, bucket)[:1]
    assert error["errorCode"] == "HttpEndpoint.DestinationException"
    assert error["attemptsMade"] == attempts
    assert error["httpEndpoint"] == {"url": receiver.url, "name": "receiver"}
    assert json.loads(health)["streams"]["h"]["DeliveryToHttpEndpoint.FailedRecords"] == 300
    assert SECRET not in health
    assert SECRET not in json.dumps(description, default=str)
    assert SECRET not in service.log_path.read_text()
    assert not seaweedfs.list_keys(bucket, "all/")  # FailedDataOnly


def test_sigkill_mid_delivery_loses_nothing(
    seaweedfs: S3Server, receiver: HttpReceiver, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"http-killed-{uuid.uuid4().hex[:8]}"
    seaweedfs.create_bucket(bucket)
    stream = http_stream(receiver.url, bucket)
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    acknowledged: list[bytes] = []
    for batch in range(10):
        if batch == 5:
            receiver.default = "hang"  # the next request is in flight when the kill comes
        acknowledged += put(service, [f"r{batch}-{i}\n".encode() for i in range(200)])
    wait_for(lambda: any(r.answered == "hang" for r in receiver.received))
    service.kill()
    hung = {r.request_id for r in receiver.received if r.answered == "hang"}
    receiver.default = "ok"

    again = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env(), port=service.port)
    services.append(again)
    again.start()
    wait_for(lambda: set(receiver.records()) >= set(acknowledged))
    assert again.terminate() == 0
    check_count(receiver, seaweedfs, bucket, acknowledged)
    # What was in flight went again with the same request id.
    assert hung <= {r.request_id for r in receiver.acknowledged()}


def test_all_data_backs_up_every_record(
    seaweedfs: S3Server, receiver: HttpReceiver, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"http-alldata-{uuid.uuid4().hex[:8]}"
    seaweedfs.create_bucket(bucket)
    stream = http_stream(receiver.url, bucket, S3BackupMode="AllData")
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    sent = [f"all-{i}\n".encode() for i in range(1000)]
    acknowledged = put(service, sent[:500]) + put(service, sent[500:])
    wait_for(lambda: len(receiver.records()) == 1000)
    assert service.terminate() == 0
    check_count(receiver, seaweedfs, bucket, acknowledged)
    backed_up = b"".join(seaweedfs.get(bucket, k) for k in seaweedfs.list_keys(bucket, "all/"))
    assert sorted(backed_up.splitlines(keepends=True)) == sorted(acknowledged)
