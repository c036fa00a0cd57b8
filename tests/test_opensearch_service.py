"""OpenSearch streams through `firehose serve`: the cluster down past the retry window, a SIGKILL
mid-load, and the AllDocuments backup; every acknowledged record is indexed in osmem-server or
in the backup bucket, read back from a real S3 store."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

from firehose.testing.opensearch_server import SearchServer, start_osmem
from firehose.testing.servers import S3Server, free_port, stop
from firehose.testing.service_process import ServiceProcess
from tests.e2e import acknowledged, json_lines, wait_for, wait_for_counters

PASSWORD = "never-shown-4a8e9a61"


def search_stream(endpoint: str, index: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "docs",
        "DeliveryStreamType": "DirectPut",
        "AmazonopensearchserviceDestinationConfiguration": {
            "ClusterEndpoint": endpoint,
            "IndexName": index,
            "IndexRotationPeriod": "NoRotation",
            "Username": "firehose",
            "Password": PASSWORD,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "S3Configuration": {
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "backup/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
            **extra,
        },
    }


def indexed(search: SearchServer, index: str) -> set[bytes]:
    """The documents of `index` as the records that made them (`{"n": "..."}` lines)."""
    return {b'{"n":"%s"}\n' % doc["n"].encode() for doc in search.documents(index).values()}


def doc(name: str) -> bytes:
    return b'{"n":"%s"}\n' % name.encode()


def put(service: ServiceProcess, records: list[bytes]) -> list[bytes]:
    return acknowledged(service, "docs", records)


def error_records(s3: S3Server, bucket: str) -> list[dict[str, Any]]:
    return json_lines(s3, bucket, "backup/AmazonOpenSearchService-failed/")


def test_cluster_down_past_the_retry_window_files_records_in_the_backup_bucket(
    s3_server: S3Server, bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    port = free_port()  # nothing listens there yet
    index = f"down-{uuid.uuid4().hex[:8]}"
    stream = search_stream(
        f"http://127.0.0.1:{port}", index, bucket, RetryOptions={"DurationInSeconds": 1}
    )
    service = ServiceProcess(tmp_path / "svc", [stream], env=s3_server.env())
    services.append(service)
    service.start()
    while_down = put(service, [doc(f"down {i}") for i in range(100)])
    wait_for(lambda: len(error_records(s3_server, bucket)) == len(while_down))

    search, proc = start_osmem(port)
    try:
        while_up = put(service, [doc(f"up {i}") for i in range(100)])
        malformed = put(service, [b"not a document\n"])
        wait_for(lambda: search.count(index) == len(while_up))
        wait_for(lambda: len(error_records(s3_server, bucket)) == 101)
        health = wait_for_counters(
            service,
            "docs",
            {
                "DeliveryToAmazonOpenSearchService.Records": 100,
                "DeliveryToAmazonOpenSearchService.FailedRecords": 101,
            },
        )
        described = service.client().describe_delivery_stream(DeliveryStreamName="docs")
        assert service.terminate() == 0
        documents = indexed(search, index)
    finally:
        stop(proc)

    errors = error_records(s3_server, bucket)
    by_code: dict[str, set[bytes]] = {}
    for error in errors:
        by_code.setdefault(error["errorCode"], set()).add(base64.b64decode(error["rawData"]))
    assert len(while_down) == len(while_up) == 100
    assert by_code == {"OS.ConnectionFailed": set(while_down), "OS.MalformedData": set(malformed)}
    assert documents == set(while_up)
    for error in errors:
        assert list(error)[:4] == ["attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage"]
        assert {"esDocumentId", "esIndexName", "esTypeName"} <= error.keys()
        if error["errorCode"] == "OS.ConnectionFailed":
            assert error["attemptsMade"] >= 2
        else:
            assert error["attemptsMade"] == 1  # not retried: it can never be a document
            assert error["esIndexName"] == index
    counters = json.loads(health)["streams"]["docs"]
    assert counters["DeliveryToAmazonOpenSearchService.Records"] == 100
    assert counters["DeliveryToAmazonOpenSearchService.FailedRecords"] == 101
    for shown in (health, repr(described), service.log_path.read_text()):
        assert PASSWORD not in shown


def test_sigkill_mid_load_loses_nothing(
    seaweedfs: S3Server,
    search_server: SearchServer,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    bucket = f"search-killed-{uuid.uuid4().hex[:6]}"
    seaweedfs.create_bucket(bucket)
    index = f"killed-{uuid.uuid4().hex[:8]}"
    stream = search_stream(search_server.url, index, bucket)
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    acknowledged: list[bytes] = []
    for batch in range(20):
        acknowledged += put(service, [doc(f"r{batch}-{i}") for i in range(200)])
        if batch == 10:
            time.sleep(0.05)
            service.kill()
            service.start()
    assert service.terminate() == 0

    documents = indexed(search_server, index)
    failed = {base64.b64decode(error["rawData"]) for error in error_records(seaweedfs, bucket)}
    assert len(acknowledged) == 4000
    missing = [record for record in acknowledged if record not in documents | failed]
    assert missing == []


def test_all_documents_also_writes_every_record_to_the_backup_bucket(
    s3_server: S3Server,
    bucket: str,
    search_server: SearchServer,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    index = f"all-{uuid.uuid4().hex[:8]}"
    stream = search_stream(search_server.url, index, bucket, S3BackupMode="AllDocuments")
    service = ServiceProcess(tmp_path / "svc", [stream], env=s3_server.env())
    services.append(service)
    service.start()
    sent = [doc(f"event {i}") for i in range(300)]
    acknowledged = put(service, sent[:150]) + put(service, sent[150:])
    assert service.terminate() == 0

    backed_up = b"".join(
        s3_server.get(bucket, key) for key in s3_server.list_keys(bucket, "backup/")
    )
    assert acknowledged == sent
    assert sorted(backed_up.splitlines(keepends=True)) == sorted(sent)
    assert indexed(search_server, index) == set(sent)
    assert error_records(s3_server, bucket) == []
