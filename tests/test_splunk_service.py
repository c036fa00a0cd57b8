"""Splunk streams through `firehose serve`: HEC down past the retry window, a SIGKILL while acks
are pending, and the AllEvents backup; every acknowledged record is indexed or in the backup
bucket, read back from a real S3 store."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess
from tests.e2e import acknowledged, json_lines, wait_for, wait_for_counters
from tests.hec_receiver import HecReceiver, RunningReceiver, hec_in_thread

TOKEN = HecReceiver().token


@pytest.fixture
def hec() -> Iterator[RunningReceiver]:
    with hec_in_thread() as running:
        yield running


def splunk_stream(hec_url: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "logs",
        "DeliveryStreamType": "DirectPut",
        "SplunkDestinationConfiguration": {
            "HECEndpoint": hec_url,
            "HECEndpointType": "Raw",
            "HECToken": TOKEN,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "S3Configuration": {
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "backup/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
            **extra,
        },
    }


def put(service: ServiceProcess, records: list[bytes]) -> list[bytes]:
    return acknowledged(service, "logs", records)


def error_records(s3: S3Server, bucket: str) -> list[dict[str, Any]]:
    return json_lines(s3, bucket, "backup/splunk-failed/")


def test_hec_down_past_the_retry_window_files_records_in_the_backup_bucket(
    s3_server: S3Server,
    bucket: str,
    hec: RunningReceiver,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    hec.stop()
    stream = splunk_stream(hec.url, bucket, RetryOptions={"DurationInSeconds": 1})
    service = ServiceProcess(tmp_path / "svc", [stream], env=s3_server.env())
    services.append(service)
    service.start()
    while_down = put(service, [b"down %d\n" % i for i in range(100)])
    wait_for(lambda: len(error_records(s3_server, bucket)) == len(while_down))

    hec.start()
    while_up = put(service, [b"up %d\n" % i for i in range(100)])
    wait_for(lambda: len(hec.receiver.raw_lines) == len(while_up))
    health = wait_for_counters(
        service, "logs", {"DeliveryToSplunk.Records": 100, "DeliveryToSplunk.FailedRecords": 100}
    )
    described = service.client().describe_delivery_stream(DeliveryStreamName="logs")
    assert service.terminate() == 0

    errors = error_records(s3_server, bucket)
    failed = {base64.b64decode(error["rawData"]) for error in errors}
    indexed = set(hec.receiver.raw_lines)
    assert len(while_down) == len(while_up) == 100
    assert failed == set(while_down)
    assert indexed == set(while_up)
    for error in errors:
        assert error["errorCode"] == "Splunk.InvalidEndpoint"
        assert error["attemptsMade"] >= 2
        assert re.fullmatch(r"\d+\.0", error["EventId"])
        assert error["subsequenceNumber"] == 0
    counters = json.loads(health)["streams"]["logs"]
    assert counters["DeliveryToSplunk.Records"] == 100
    assert counters["DeliveryToSplunk.FailedRecords"] == 100
    for shown in (health, repr(described), service.log_path.read_text()):
        assert TOKEN not in shown


def test_sigkill_while_acks_are_pending_loses_nothing(
    seaweedfs: S3Server, hec: RunningReceiver, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = "splunk-killed"
    seaweedfs.create_bucket(bucket)
    hec.receiver.ack_delay = 0.2  # deliveries wait on acks when the kill comes
    service = ServiceProcess(
        tmp_path / "svc", [splunk_stream(hec.url, bucket)], env=seaweedfs.env()
    )
    services.append(service)
    service.start()
    acknowledged: list[bytes] = []
    for batch in range(20):
        acknowledged += put(service, [b"r%d-%d\n" % (batch, i) for i in range(200)])
        if batch == 10:
            time.sleep(0.1)
            service.kill()
            service.start()
    assert service.terminate() == 0

    indexed = set(hec.receiver.raw_lines)
    failed = {base64.b64decode(error["rawData"]) for error in error_records(seaweedfs, bucket)}
    assert len(acknowledged) == 4000
    missing = [record for record in acknowledged if record not in indexed | failed]
    assert missing == []


def test_all_events_also_writes_every_record_to_the_backup_bucket(
    s3_server: S3Server,
    bucket: str,
    hec: RunningReceiver,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    stream = splunk_stream(hec.url, bucket, S3BackupMode="AllEvents")
    service = ServiceProcess(tmp_path / "svc", [stream], env=s3_server.env())
    services.append(service)
    service.start()
    sent = [b"event %d\n" % i for i in range(300)]
    acknowledged = put(service, sent[:150]) + put(service, sent[150:])
    assert service.terminate() == 0

    backed_up = b"".join(
        s3_server.get(bucket, key) for key in s3_server.list_keys(bucket, "backup/")
    )
    assert acknowledged == sent
    assert sorted(backed_up.splitlines(keepends=True)) == sorted(sent)
    assert sorted(hec.receiver.raw_lines) == sorted(sent)
    assert error_records(s3_server, bucket) == []
