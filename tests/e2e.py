"""Helpers the end-to-end tests share: put records and keep the acknowledged ones, wait for a
condition, read JSON-lines objects (error records) back from a bucket."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess


def acknowledged(service: ServiceProcess, stream: str, records: list[bytes]) -> list[bytes]:
    """PutRecordBatch `records` to `stream`; the ones the service acknowledged."""
    answer = service.client().put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": record} for record in records]
    )
    entries = answer["RequestResponses"]
    return [r for r, entry in zip(records, entries, strict=True) if "RecordId" in entry]


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def health(service: ServiceProcess) -> dict[str, Any]:
    """/health, parsed: the streams' counters and states."""
    found: dict[str, Any] = json.loads(service.health_text())
    return found


def wait_for_counters(service: ServiceProcess, stream: str, expected: dict[str, int]) -> str:
    """Wait until /health shows `expected` for `stream`; its text then. A counter moves when the
    service has the destination's answer, a moment after the destination has the data."""
    shown: list[str] = []

    def reached() -> bool:
        shown[:] = [service.health_text()]
        counters = json.loads(shown[0])["streams"][stream]
        return all(counters.get(name) == value for name, value in expected.items())

    wait_for(reached)
    return shown[0]


def json_lines(server: S3Server, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every JSON line of every object under `prefix`: error records, for instance."""
    return [
        json.loads(line)
        for key in server.list_keys(bucket, prefix)
        for line in server.get(bucket, key).splitlines()
    ]


def kms_client(server: S3Server) -> Any:
    """A KMS client of `server` (moto in server mode: its KMS beside its S3)."""
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
