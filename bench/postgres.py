"""Records/s loaded into PostgreSQL through `firehose serve` (a Redshift stream with a
`jdbc:postgresql://` URL: staged in SeaweedFS, then COPY FROM STDIN), against a baseline that
makes the same client calls directly in this process: COPY FROM STDIN of the same batches.

    python -m bench.postgres [--records 400000] [--buffer-mib 5]

Two service figures: end to end (first PutRecordBatch to last row committed: ingest, the log,
staging and loads), and delivery alone: every record is acknowledged while a lock held by the
bench keeps the first COPY waiting, then the lock goes and the clock runs until the last row.
The second is the one to compare with the baseline, which does only the loads.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import orjson
import psycopg

from firehose.testing.postgres import PASSWORD, USER, PostgresServer, start_postgres
from firehose.testing.servers import S3Server, start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess

MIB = 1024 * 1024
RECORDS_PER_CALL = 500
PRODUCERS = 4
HEADERS = {
    "X-Amz-Target": "Firehose_20150804.PutRecordBatch",
    "Content-Type": "application/x-amz-json-1.1",
}
COLUMNS = "id bigint, user_id integer, event text, url text, amount numeric"


def make_records(count: int) -> list[bytes]:
    """Pipe-delimited lines (Redshift's default text format), about 100 bytes each."""
    return [
        b"%d|%d|%s|https://shop.example/items/%d?ref=campaign-%d|%d.%02d\n"
        % (
            i,
            i % 9973,
            b"page_view" if i % 3 else b"add_to_cart",
            i % 5000,
            i % 17,
            i % 500,
            i % 100,
        )
        for i in range(count)
    ]


def create_table(postgres: PostgresServer, name: str) -> None:
    with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {name}")
        connection.execute(f"CREATE TABLE {name} ({COLUMNS})")


def row_count(postgres: PostgresServer, table: str) -> int:
    with psycopg.connect(postgres.conninfo) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def batches(records: Sequence[bytes], buffer_bytes: int) -> list[bytes]:
    """The records cut as the service cuts its buffers: at the size hint."""
    cut: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        current.append(record)
        size += len(record)
        if size >= buffer_bytes:
            cut.append(b"".join(current))
            current, size = [], 0
    if current:
        cut.append(b"".join(current))
    return cut


async def baseline(postgres: PostgresServer, table: str, bodies: list[bytes]) -> float:
    """The client calls of the service's loads, alone: one COPY FROM STDIN per batch."""
    statement = f"COPY {table} FROM STDIN WITH (FORMAT text, DELIMITER '|')"
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(postgres.conninfo, autocommit=True) as db:
        for body in bodies:
            async with db.transaction(), db.cursor() as cursor, cursor.copy(statement) as copy:
                for start in range(0, len(body), MIB):
                    await copy.write(memoryview(body)[start : start + MIB])
    return time.perf_counter() - started


def put_bodies(records: Sequence[bytes]) -> list[bytes]:
    calls = []
    for start in range(0, len(records), RECORDS_PER_CALL):
        chunk = records[start : start + RECORDS_PER_CALL]
        entries = [{"Data": base64.b64encode(r).decode()} for r in chunk]
        calls.append(orjson.dumps({"DeliveryStreamName": "bench", "Records": entries}))
    return calls


async def send(url: str, bodies: list[bytes]) -> None:
    queue = list(reversed(bodies))

    async def producer(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            while True:
                async with session.post(url, data=body, headers=HEADERS) as answer:
                    reply = orjson.loads(await answer.read())
                if answer.status == 200 and reply.get("FailedPutCount") == 0:
                    break
                await asyncio.sleep(0.05)  # throttled: the same body again

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(producer(session) for _ in range(PRODUCERS)))


def delivered(service: ServiceProcess) -> int:
    with urllib.request.urlopen(f"{service.url}/health") as answer:
        return int(orjson.loads(answer.read())["streams"]["bench"]["DeliveryToRedshift.Records"])


def through_service(
    postgres: PostgresServer,
    s3: S3Server,
    workdir: Path,
    records: list[bytes],
    buffer_mib: int,
    *,
    locked: bool,
) -> float:
    """Seconds until every record is loaded: from the first put, or (`locked`) from the moment
    the table is unlocked with every record already acknowledged."""
    table = "bench_locked" if locked else "bench_service"
    create_table(postgres, table)
    s3.create_bucket(f"staging-{table.replace('_', '-')}")
    stream = {
        "DeliveryStreamName": "bench",
        "RedshiftDestinationConfiguration": {
            "ClusterJDBCURL": postgres.jdbc_url(),
            "CopyCommand": {"DataTableName": table},
            "Username": USER,
            "Password": PASSWORD,
            "S3Configuration": {
                "BucketARN": f"arn:aws:s3:::staging-{table.replace('_', '-')}",
                "Prefix": "staging/",
                "BufferingHints": {"SizeInMBs": buffer_mib, "IntervalInSeconds": 1},
            },
        },
    }
    service = ServiceProcess(workdir / table, [stream], env=s3.env())
    service.start()
    lock = psycopg.connect(postgres.conninfo)
    try:
        if locked:
            lock.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        started = time.perf_counter()
        asyncio.run(send(f"{service.url}/", put_bodies(records)))
        if locked:
            time.sleep(2)  # every buffer sealed, the first COPY waiting on the lock
            started = time.perf_counter()
            lock.commit()
        while delivered(service) < len(records):
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        loaded = row_count(postgres, table)
        assert loaded == len(records), f"{loaded} rows for {len(records)} records"
        return seconds
    finally:
        lock.close()
        service.terminate()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--buffer-mib", type=int, default=5)
    args = parser.parse_args(argv)
    records = make_records(args.records)
    data_mib = sum(map(len, records)) / MIB
    workdir = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    s3, s3_proc = start_seaweedfs(workdir / "s3")
    postgres = start_postgres()
    try:
        create_table(postgres, "bench_baseline")
        bodies = batches(records, args.buffer_mib * MIB)
        base_s = asyncio.run(baseline(postgres, "bench_baseline", bodies))
        assert row_count(postgres, "bench_baseline") == len(records)
        end_to_end_s = through_service(
            postgres, s3, workdir, records, args.buffer_mib, locked=False
        )
        service_s = through_service(postgres, s3, workdir, records, args.buffer_mib, locked=True)
    finally:
        postgres.stop("immediate")
        postgres.remove()
        stop(s3_proc)
    count = len(records)
    service_rate, base_rate = count / service_s, count / base_s
    print(f"{count} records, {data_mib:.1f} MiB, {len(bodies)} batches of {args.buffer_mib} MiB")
    print(f"baseline (COPY FROM STDIN):      {base_rate:>10,.0f} records/s  ({base_s:.2f} s)")
    print(f"service, delivery (stage + COPY): {service_rate:>9,.0f} records/s  ({service_s:.2f} s)")
    print(f"service / baseline:              {service_rate / base_rate:>10.0%}")
    print(
        f"service, end to end (with ingest): {count / end_to_end_s:>7,.0f} records/s  "
        f"({end_to_end_s:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
