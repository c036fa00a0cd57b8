"""Dynamic partitioning through `firehose serve` against a real S3 store: partitions read back as
a hive-partitioned dataset, records without a partition in the error prefix, the partition
limit, and SIGKILL with many partitions open."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.test_processing_service import processors

ERRORS = "errors/!{firehose:error-output-type}/"


@pytest.fixture
def bucket(seaweedfs: S3Server) -> str:
    name = f"dp-{time.monotonic_ns()}"
    seaweedfs.create_bucket(name)
    return name


def partitioned_stream(bucket: str, interval: int = 1, **extra: Any) -> dict[str, Any]:
    return s3_stream(
        "dp",
        bucket,
        Prefix="customer=!{partitionKeyFromQuery:customer}/year=!{timestamp:yyyy}/",
        ErrorOutputPrefix=ERRORS,
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": interval},
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration=processors(
            ("MetadataExtraction", {"MetadataExtractionQuery": "{customer: .c}"}),
            ("AppendDelimiterToRecord", {}),
        ),
        **extra,
    )


def put_all(service: ServiceProcess, records: list[bytes]) -> None:
    client = service.client()
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        answer = client.put_record_batch(
            DeliveryStreamName="dp", Records=[{"Data": data} for data in chunk]
        )
        assert answer["FailedPutCount"] == 0


def download(server: S3Server, bucket: str, prefix: str, into: Path) -> list[str]:
    keys = server.list_keys(bucket, prefix)
    for key in keys:
        path = into / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(server.get(bucket, key))
    return keys


def error_records(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key in server.list_keys(bucket, "errors/")
        for line in server.get(bucket, key).splitlines()
    ]


def test_partitions_read_back_as_a_hive_dataset(
    seaweedfs: S3Server, bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    service = ServiceProcess(tmp_path / "svc", [partitioned_stream(bucket)], env=seaweedfs.env())
    services.append(service)
    service.start()
    good = [json.dumps({"c": f"c{n % 7}", "n": n}).encode() for n in range(700)]
    bad = {
        b"not json": "DynamicPartitioning.MetadataExtractionFailed",
        b'{"n": 1}': "DynamicPartitioning.MetadataExtractionFailed",  # no customer: null
        b'{"c": "a/b"}': "DynamicPartitioning.InvalidPartitionValue",
        b'{"c": ".."}': "DynamicPartitioning.InvalidPartitionValue",
        b'{"c": "x\\u0001"}': "DynamicPartitioning.InvalidPartitionValue",
        json.dumps({"c": "x" * 600}).encode(): "DynamicPartitioning.InvalidPartitionValue",
    }
    put_all(service, good[:300] + list(bad) + good[300:])
    assert service.terminate() == 0

    keys = download(seaweedfs, bucket, "customer=", tmp_path / "out")
    assert all(key.split("/")[2].startswith("dp-1-") for key in keys)
    table = ds.dataset(tmp_path / "out", format="json", partitioning="hive").to_table()
    counts = Counter(str(c) for c in table.column("customer").to_pylist())
    assert counts == Counter(json.loads(r)["c"] for r in good)
    assert sorted(table.column("n").to_pylist()) == list(range(700))

    errors = error_records(seaweedfs, bucket)
    assert {base64.b64decode(e["rawData"]): e["errorCode"] for e in errors} == bad
    assert all(key.startswith("errors/partitioning-failed/dp-1-") for key in
               seaweedfs.list_keys(bucket, "errors/"))  # fmt: skip
    assert all({"attemptsMade", "arrivalTimestamp", "errorMessage"} <= set(e) for e in errors)


def test_records_past_the_partition_limit_go_to_the_error_prefix(
    seaweedfs: S3Server, bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    service = ServiceProcess(
        tmp_path / "svc",
        [partitioned_stream(bucket, interval=900)],
        env={**seaweedfs.env(), "FIREHOSE_MAX_ACTIVE_PARTITIONS": "2"},
    )
    services.append(service)
    service.start()
    records = [json.dumps({"c": c, "n": n}).encode() for n, c in enumerate("abcab")]
    put_all(service, records)
    assert service.terminate() == 0

    delivered = b"".join(
        seaweedfs.get(bucket, key) for key in seaweedfs.list_keys(bucket, "customer=")
    )
    assert sorted(json.loads(line)["n"] for line in delivered.splitlines()) == [0, 1, 3, 4]
    [error] = error_records(seaweedfs, bucket)
    assert error["errorCode"] == "DynamicPartitioning.PartitionCountExceeded"
    assert json.loads(base64.b64decode(error["rawData"])) == {"c": "c", "n": 2}


def test_sigkill_with_many_partitions_open_loses_nothing(
    seaweedfs: S3Server, bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    """50 partitions buffer for a long interval; SIGKILL, then a restart: every acknowledged
    record is delivered or in the error prefix."""
    stream = partitioned_stream(bucket, interval=900)
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    sent: list[bytes] = []
    for batch in range(6):
        records = [
            json.dumps({"c": f"c{(batch * 500 + i) % 50}", "n": batch * 500 + i}).encode()
            if i % 97
            else b"broken " + str(batch * 500 + i).encode()
            for i in range(500)
        ]
        put_all(service, records)
        sent += records
        if batch == 3:
            time.sleep(0.5)  # the stage has read and buffered what was sent
            service.kill()
            assert not seaweedfs.list_keys(bucket, "customer=")  # all still buffered
            service.start()
    assert service.terminate() == 0

    delivered = {
        line
        for key in seaweedfs.list_keys(bucket, "customer=")
        for line in seaweedfs.get(bucket, key).splitlines()
    }
    failed = {base64.b64decode(e["rawData"]) for e in error_records(seaweedfs, bucket)}
    assert len({key.split("/")[0] for key in seaweedfs.list_keys(bucket, "customer=")}) == 50
    for record in sent:
        assert record in (failed if record.startswith(b"broken") else delivered), record
