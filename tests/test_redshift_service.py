"""Redshift streams into PostgreSQL through `firehose serve`: the database stopped for longer than
the retry window, a SIGKILL in the middle of loads, and the source-record backup. Every
acknowledged record ends up loaded, or listed by a manifest under errors/."""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from firehose.testing.postgres import PASSWORD, USER, PostgresServer
from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess
from tests.e2e import acknowledged, wait_for, wait_for_counters


@pytest.fixture
def table(postgres: PostgresServer) -> str:
    name = f"e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {name} (line text NOT NULL)")
    return name


def redshift_stream(
    postgres: PostgresServer, bucket: str, table: str, **extra: Any
) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "events",
        "RedshiftDestinationConfiguration": {
            "ClusterJDBCURL": postgres.jdbc_url(),
            "CopyCommand": {"DataTableName": table, "CopyOptions": "GZIP"},
            "Username": USER,
            "Password": PASSWORD,
            "S3Configuration": {
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "staging/",
                "CompressionFormat": "GZIP",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
            **extra,
        },
    }


def loaded(postgres: PostgresServer, table: str) -> list[bytes]:
    with psycopg.connect(postgres.conninfo) as connection:
        lines = connection.execute(f"SELECT line FROM {table}").fetchall()
    return [f"{line}\n".encode() for (line,) in lines]


def in_failed_manifests(s3: S3Server, bucket: str) -> list[bytes]:
    """The records of the staged objects that manifests under errors/ list."""
    records: list[bytes] = []
    for key in s3.list_keys(bucket, "staging/errors/manifests/"):
        for entry in orjson.loads(s3.get(bucket, key))["entries"]:
            staged_bucket, staged_key = entry["url"].removeprefix("s3://").split("/", 1)
            body = gzip.decompress(s3.get(staged_bucket, staged_key))
            records += body.splitlines(keepends=True)
    return records


def put(service: ServiceProcess, records: list[bytes]) -> list[bytes]:
    return acknowledged(service, "events", records)


def test_database_down_past_the_window_then_back_loses_nothing(
    seaweedfs: S3Server,
    postgres: PostgresServer,
    table: str,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    bucket = f"rs-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    backup = {"BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": "raw/"}
    stream = redshift_stream(
        postgres,
        bucket,
        table,
        RetryOptions={"DurationInSeconds": 2},
        S3BackupMode="Enabled",
        S3BackupConfiguration=backup,
    )
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    postgres.stop()
    try:
        while_down = put(service, [b"down %d\n" % i for i in range(300)])
        wait_for(lambda: sorted(in_failed_manifests(seaweedfs, bucket)) == sorted(while_down))
        time.sleep(1)  # longer than the window
    finally:
        postgres.start()
    while_up = put(service, [b"up %d\n" % i for i in range(300)])
    wait_for(lambda: len(loaded(postgres, table)) == len(while_up))
    health = orjson.loads(
        wait_for_counters(
            service,
            "events",
            {"DeliveryToRedshift.Records": 600, "DeliveryToRedshift.FailedRecords": 300},
        )
    )
    described = service.client().describe_delivery_stream(DeliveryStreamName="events")
    assert service.terminate() == 0

    assert len(while_down) == len(while_up) == 300
    assert sorted(loaded(postgres, table)) == sorted(while_up)
    assert sorted(in_failed_manifests(seaweedfs, bucket)) == sorted(while_down)
    backed_up = b"".join(seaweedfs.get(bucket, key) for key in seaweedfs.list_keys(bucket, "raw/"))
    assert sorted(backed_up.splitlines(keepends=True)) == sorted(while_down + while_up)
    counters = health["streams"]["events"]
    assert counters["DeliveryToRedshift.Records"] == 600
    assert counters["DeliveryToRedshift.FailedRecords"] == 300
    for shown in (repr(health), repr(described), service.log_path.read_text()):
        assert PASSWORD not in shown


def test_sigkill_in_the_middle_of_loads_loses_nothing(
    seaweedfs: S3Server,
    postgres: PostgresServer,
    table: str,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    bucket = f"rs-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    stream = redshift_stream(postgres, bucket, table)
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    acknowledged: list[bytes] = []
    for batch in range(20):
        acknowledged += put(service, [b"r%d-%d\n" % (batch, i) for i in range(200)])
        if batch == 10:
            time.sleep(0.1)
            service.kill()
            service.start()
    wait_for(lambda: set(loaded(postgres, table)) >= set(acknowledged))
    assert service.terminate() == 0

    assert len(acknowledged) == 4000
    assert set(loaded(postgres, table)) == set(acknowledged)  # duplicates allowed, no loss
    assert seaweedfs.list_keys(bucket, "staging/errors/") == []
