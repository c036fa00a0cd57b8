"""The Redshift destination against a real PostgreSQL and real S3 stores: staged objects and
manifests where Firehose puts them, rows loaded per CopyOptions, failed loads filed under
errors/ once their window is over, and the Redshift statement as PostgreSQL received it."""

from __future__ import annotations

import asyncio
import gzip
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import psycopg
import pytest

from destinations.objectstore import S3ObjectStore
from destinations.redshift import RedshiftDestination
from firehose.batch import Batch, RecordRun
from firehose.config import RedshiftConfiguration
from firehose.destination import DELIVERED
from firehose.errors import DeliveryError
from firehose.testing.postgres import PASSWORD, USER, PostgresServer
from firehose.testing.servers import S3Server, free_port

ARRIVAL_MS = 1_795_000_000_000  # 2026-11-18 11:06:40 UTC
HOUR_PATH = "2026/11/18/11/"
ROLE = "arn:aws:iam::123456789012:role/firehose-redshift"


@pytest.fixture
def table(postgres: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {name} (id integer NOT NULL, name text, score numeric, extra jsonb)"
        )
    yield name


def rows(postgres: PostgresServer, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres.conninfo) as connection:
        return connection.execute(
            f"SELECT id, name, score, extra FROM {table} ORDER BY id"
        ).fetchall()


def section(
    url: str, s3: S3Server, bucket: str, table: str, options: str | None = None, **extra: Any
) -> RedshiftConfiguration:
    command: dict[str, Any] = {"DataTableName": table}
    if options is not None:
        command["CopyOptions"] = options
    if "columns" in extra:
        command["DataTableColumns"] = extra.pop("columns")
    staging = {
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": "events/",
        "EndpointURL": s3.endpoint_url,
        "CompressionFormat": extra.pop("compression", "UNCOMPRESSED"),
    }
    return RedshiftConfiguration.model_validate(
        {
            "RoleARN": ROLE,
            "ClusterJDBCURL": url,
            "CopyCommand": command,
            "Username": USER,
            "Password": PASSWORD,
            "S3Configuration": staging,
            **extra,
        }
    )


def batch(records: list[bytes], first_seq: int = 0) -> Batch:
    made = Batch()
    made.add(
        RecordRun(first_seq, ARRIVAL_MS, [len(r) for r in records], memoryview(b"".join(records)))
    )
    return made


@pytest.fixture
def s3(seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    return seaweedfs


@pytest.fixture
def staging_bucket(s3: S3Server) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture
async def destinations() -> AsyncIterator[list[RedshiftDestination]]:
    made: list[RedshiftDestination] = []
    yield made
    for destination in made:
        await destination.close()


def destination_for(
    config: RedshiftConfiguration, made: list[RedshiftDestination]
) -> RedshiftDestination:
    destination = RedshiftDestination(
        "events", config, S3ObjectStore(config.s3_configuration.endpoint_url)
    )
    made.append(destination)
    return destination


async def test_text_load_with_staged_object_and_manifest(
    s3_server: S3Server,
    bucket: str,
    postgres: PostgresServer,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
    destinations: list[RedshiftDestination],
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    config = section(postgres.jdbc_url(), s3_server, bucket, table, columns="id,name")
    destination = destination_for(config, destinations)
    records = [b"%d|name %d\n" % (i, i) for i in range(1000)]
    assert await destination.deliver(batch(records)) == DELIVERED
    assert [(r[0], r[1]) for r in rows(postgres, table)] == [(i, f"name {i}") for i in range(1000)]

    [staged] = s3_server.list_keys(bucket, "events/" + HOUR_PATH)
    assert staged.startswith(f"events/{HOUR_PATH}events-1-2026-11-18-11-06-40-")
    assert s3_server.get(bucket, staged) == b"".join(records)
    [manifest] = s3_server.list_keys(bucket, f"events/manifests/{HOUR_PATH}")
    assert orjson.loads(s3_server.get(bucket, manifest)) == {
        "entries": [{"url": f"s3://{bucket}/{staged}", "mandatory": True}]
    }
    assert s3_server.list_keys(bucket, "events/errors/") == []


async def test_gzip_json_auto_by_column_name(
    s3: S3Server,
    staging_bucket: str,
    postgres: PostgresServer,
    table: str,
    destinations: list[RedshiftDestination],
) -> None:
    config = section(
        postgres.jdbc_url(), s3, staging_bucket, table, "JSON 'auto' GZIP", compression="GZIP"
    )
    destination = destination_for(config, destinations)
    records = [
        orjson.dumps({"id": 1, "name": "tab\tand\nnewline \\ back", "score": 1.5}) + b"\n",
        orjson.dumps({"id": 2, "extra": {"nested": [1, 2]}, "unknown": True}) + b"\n",
        b'{"id": 3, "name": null}{"id": 4, "name": "no newline between"}\n',
    ]
    await destination.deliver(batch(records))
    [staged] = s3.list_keys(staging_bucket, "events/" + HOUR_PATH)
    assert staged.endswith(".gz")
    assert gzip.decompress(s3.get(staging_bucket, staged)) == b"".join(records)
    loaded = rows(postgres, table)
    assert [(r[0], r[1]) for r in loaded] == [
        (1, "tab\tand\nnewline \\ back"),
        (2, None),
        (3, None),
        (4, "no newline between"),
    ]
    assert float(loaded[0][2]) == 1.5
    assert loaded[1][3] == {"nested": [1, 2]}


async def test_json_auto_ignorecase_and_csv_with_null(
    s3: S3Server,
    staging_bucket: str,
    postgres: PostgresServer,
    table: str,
    destinations: list[RedshiftDestination],
) -> None:
    url = postgres.jdbc_url()
    config = section(url, s3, staging_bucket, table, "JSON 'auto ignorecase'", columns="id,name")
    await destination_for(config, destinations).deliver(batch([b'{"ID": 1, "Name": "a"}\n']))
    config = section(url, s3, staging_bucket, table, "CSV NULL AS 'none'", columns="id,name,score")
    csv = [b'2,"quoted, comma",none\n', b"3,none,2.5\n"]
    await destination_for(config, destinations).deliver(batch(csv, first_seq=1))
    loaded = rows(postgres, table)
    assert [(r[0], r[1]) for r in loaded] == [(1, "a"), (2, "quoted, comma"), (3, None)]
    assert loaded[1][2] is None and float(loaded[2][2]) == 2.5


async def test_a_bad_value_files_the_manifest_under_errors_once_the_window_is_over(
    s3: S3Server,
    staging_bucket: str,
    postgres: PostgresServer,
    table: str,
    destinations: list[RedshiftDestination],
) -> None:
    config = section(
        postgres.jdbc_url(),
        s3,
        staging_bucket,
        table,
        columns="id,name",
        RetryOptions={"DurationInSeconds": 1},
    )
    destination = destination_for(config, destinations)
    bad = batch([b"1|fine\n", b"not a number|oops\n"])
    with pytest.raises(DeliveryError) as caught:
        await destination.deliver(bad)
    assert caught.value.code == "Redshift.DataLoadFailed"
    assert PASSWORD not in str(caught.value)
    assert s3.list_keys(staging_bucket, "events/errors/") == []
    time.sleep(1.1)
    assert await destination.deliver(bad) == DELIVERED  # handled: the stream moves on
    assert rows(postgres, table) == []  # one transaction: nothing of the batch
    [failed] = s3.list_keys(staging_bucket, f"events/errors/manifests/{HOUR_PATH}")
    [manifest] = s3.list_keys(staging_bucket, f"events/manifests/{HOUR_PATH}")
    assert failed.rsplit("/", 1)[1] == manifest.rsplit("/", 1)[1]
    assert s3.get(staging_bucket, failed) == s3.get(staging_bucket, manifest)
    assert destination.counters.failed_records == 2
    # The next batch loads again: the failed one left no state behind.
    assert await destination.deliver(batch([b"5|next\n"], first_seq=2)) == DELIVERED
    assert [r[0] for r in rows(postgres, table)] == [5]


class FlakyStore(S3ObjectStore):
    """An S3 store whose puts of keys under `failing` fail while `failing` is set; it counts
    the puts that reached the store."""

    def __init__(self, endpoint_url: str | None) -> None:
        super().__init__(endpoint_url)
        self.failing: str | None = None
        self.puts: list[str] = []

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None:
        if self.failing is not None and key.startswith(self.failing):
            raise DeliveryError(f"PutObject {key}: down", code="S3.ConnectionFailed")
        await super().put(bucket, key, body, kms_key_arn=kms_key_arn)
        self.puts.append(key)


async def test_a_failed_upload_rolls_the_load_back_and_a_retry_redoes_only_the_rest(
    s3: S3Server, staging_bucket: str, postgres: PostgresServer, table: str
) -> None:
    config = section(postgres.jdbc_url(), s3, staging_bucket, table, columns="id,name")
    store = FlakyStore(config.s3_configuration.endpoint_url)
    destination = RedshiftDestination("events", config, store)
    try:
        store.failing = f"events/{HOUR_PATH}"  # the object's upload fails, the manifest's not
        records = batch([b"1|a\n", b"2|b\n"])
        with pytest.raises(DeliveryError) as caught:
            await destination.deliver(records)
        assert caught.value.code == "S3.ConnectionFailed"
        assert rows(postgres, table) == []  # no rows from an object that is not staged
        [manifest] = store.puts
        assert manifest.startswith(f"events/manifests/{HOUR_PATH}")
        store.failing = None
        assert await destination.deliver(records) == DELIVERED
        assert [r[0] for r in rows(postgres, table)] == [1, 2]
        [manifest, staged] = store.puts  # the manifest not uploaded again
        assert s3.get(staging_bucket, staged) == b"1|a\n2|b\n"
    finally:
        await destination.close()


class HeldStore(S3ObjectStore):
    """An S3 store whose object puts (not the manifests') wait until `release` is set."""

    def __init__(self, endpoint_url: str | None) -> None:
        super().__init__(endpoint_url)
        self.release = asyncio.Event()

    async def put(
        self, bucket: str, key: str, body: bytes, *, kms_key_arn: str | None = None
    ) -> None:
        if "/manifests/" not in key:
            await self.release.wait()
        await super().put(bucket, key, body, kms_key_arn=kms_key_arn)


def copy_waiting_to_commit(postgres: PostgresServer, table: str) -> bool:
    """Whether a COPY into `table` has run and its transaction is still open."""
    with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
            "AND query LIKE %s",
            (f"COPY {table}%",),
        ).fetchone()
    return bool(row and row[0])


async def test_the_load_commits_only_once_its_object_is_staged(
    s3: S3Server, staging_bucket: str, postgres: PostgresServer, table: str
) -> None:
    config = section(postgres.jdbc_url(), s3, staging_bucket, table, columns="id,name")
    store = HeldStore(config.s3_configuration.endpoint_url)
    destination = RedshiftDestination("events", config, store)
    try:
        delivery = asyncio.create_task(destination.deliver(batch([b"1|a\n", b"2|b\n"])))
        deadline = time.monotonic() + 30
        while not copy_waiting_to_commit(postgres, table):
            assert time.monotonic() < deadline, "the COPY never ran"
            await asyncio.sleep(0.02)
        assert rows(postgres, table) == []  # sent, not committed: the object is not staged
        assert not delivery.done()
        store.release.set()
        assert await delivery == DELIVERED
        assert [r[0] for r in rows(postgres, table)] == [1, 2]
        assert len(s3.list_keys(staging_bucket, f"events/{HOUR_PATH}")) == 1
    finally:
        await destination.close()


async def test_a_retry_after_a_failed_load_does_not_stage_again(
    s3: S3Server, staging_bucket: str, postgres: PostgresServer, table: str
) -> None:
    config = section(postgres.jdbc_url(), s3, staging_bucket, table, columns="id,name")
    store = FlakyStore(config.s3_configuration.endpoint_url)
    destination = RedshiftDestination("events", config, store)
    try:
        records = batch([b"2|a\n", b"3|b\n"])
        with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
            connection.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
            with pytest.raises(DeliveryError) as caught:
                await destination.deliver(records)
            assert caught.value.code == "Redshift.TableNotFound"
            assert len(store.puts) == 2
            connection.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
        assert await destination.deliver(records) == DELIVERED
        assert [r[0] for r in rows(postgres, table)] == [2, 3]
        assert len(store.puts) == 2  # staged once
    finally:
        await destination.close()


async def test_a_wrong_column_with_no_retry_window(
    s3: S3Server,
    staging_bucket: str,
    postgres: PostgresServer,
    table: str,
    destinations: list[RedshiftDestination],
) -> None:
    config = section(
        postgres.jdbc_url(),
        s3,
        staging_bucket,
        table,
        columns="id,missing",
        RetryOptions={"DurationInSeconds": 0},
    )
    assert await destination_for(config, destinations).deliver(batch([b"1|x\n"])) == DELIVERED
    assert len(s3.list_keys(staging_bucket, "events/errors/manifests/")) == 1


async def test_connection_failures_are_retriable(
    s3: S3Server, staging_bucket: str, destinations: list[RedshiftDestination]
) -> None:
    url = f"jdbc:postgresql://127.0.0.1:{free_port()}/warehouse"
    destination = destination_for(section(url, s3, staging_bucket, "t"), destinations)
    with pytest.raises(DeliveryError) as caught:
        await destination.deliver(batch([b"1|x\n"]))
    assert caught.value.retriable
    assert caught.value.code == "Redshift.ConnectionFailed"
    assert PASSWORD not in str(caught.value)


async def test_the_redshift_statement_reaches_the_server(
    s3: S3Server,
    staging_bucket: str,
    postgres: PostgresServer,
    table: str,
    destinations: list[RedshiftDestination],
) -> None:
    """PostgreSQL speaks Redshift's protocol but not its COPY: it logs the statement it was
    sent, then refuses it, so the load ends with its manifest under errors/."""
    config = section(
        postgres.jdbc_url("redshift"),
        s3,
        staging_bucket,
        table,
        "JSON 'auto'",
        compression="GZIP",
        RetryOptions={"DurationInSeconds": 0},
    )
    destination = destination_for(config, destinations)
    assert await destination.deliver(batch([b'{"id": 1}\n'])) == DELIVERED
    [manifest] = s3.list_keys(staging_bucket, f"events/manifests/{HOUR_PATH}")
    statement = (
        f"COPY {table} FROM 's3://{staging_bucket}/{manifest}' "
        f"CREDENTIALS 'aws_iam_role={ROLE}' MANIFEST JSON 'auto' GZIP"
    )
    # Logged with the error it caused (PostgreSQL does not parse CREDENTIALS).
    assert re.search(rf"STATEMENT:\s+{re.escape(statement)}\n", postgres.statements())
    assert len(s3.list_keys(staging_bucket, "events/errors/manifests/")) == 1
