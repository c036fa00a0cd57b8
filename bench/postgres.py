"""Records/s loaded into PostgreSQL through `firehose serve` (a Redshift stream with a
`jdbc:postgresql://` URL: each batch staged in SeaweedFS with its manifest, and loaded with COPY
FROM STDIN), against a baseline that makes the same client calls directly in this process.

    python -m bench.postgres [--records 1000000] [--buffer-mib 5] [--rounds 7]

Both sides are timed the same way, over the same batches (the records cut at the buffer size):
a lock held by the bench keeps the first COPY waiting until every record is in hand (the
service has acknowledged them all; the baseline has them in memory) and the first object is
staged; then the lock goes and the clock runs until the last row is committed. The service
gets every round's records first, one stream and table per round, so that its rounds and the
baseline's alternate back to back (after an untimed baseline pass: a fresh cluster's first
loads are slower); the figure is the median ratio of their records/s, with its spread. One more
service run, end to end (from the first PutRecordBatch), shows what ingest adds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg

from bench.postgres_baseline import stage_and_copy
from firehose.testing.postgres import PASSWORD, USER, PostgresServer, start_postgres
from firehose.testing.servers import S3Server, start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess

MIB = 1024 * 1024
RECORDS_PER_CALL = 500
PRODUCERS = 4
# With the first COPY waiting on the lock, time for its object and manifest to be staged.
SETTLE_SECONDS = 1.0
POLL_SECONDS = 0.01
# The locked streams' interval hint: long enough that no buffer is cut before it is full while
# the records come in, short enough that the last, partial one is due before its round starts
# (every round's records are in, and every lock has settled, first).
LOCKED_INTERVAL_SECONDS = 5
HEADERS = {
    "X-Amz-Target": "Firehose_20150804.PutRecordBatch",
    "Content-Type": "application/x-amz-json-1.1",
}
COLUMNS = "id bigint, user_id integer, event text, url text, amount numeric"


def make_records(count: int) -> list[bytes]:
    """Pipe-delimited lines (Redshift's default text format), about 75 bytes each."""
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


def batches(records: Sequence[bytes], buffer_bytes: int) -> list[list[bytes]]:
    """The records cut as the service cuts its buffers: as many as fit in the size hint."""
    cut: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and size + len(record) > buffer_bytes:
            cut.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        cut.append(current)
    return cut


class TableLock:
    """ACCESS EXCLUSIVE on a table, held so that the first COPY waits; released to start the
    clock."""

    def __init__(self, postgres: PostgresServer, table: str) -> None:
        self.table = table
        self.connection = psycopg.connect(postgres.conninfo)
        self.connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self._watch = psycopg.connect(postgres.conninfo, autocommit=True)

    def wait_for_copy(self, timeout: float = 300) -> None:
        """Return once a COPY waits for the lock, and the settle time has passed."""
        deadline = time.monotonic() + timeout
        query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
        while True:
            row = self._watch.execute(query, (self.table,)).fetchone()
            if row and row[0]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no COPY into {self.table} within {timeout} s")
            time.sleep(POLL_SECONDS)
        time.sleep(SETTLE_SECONDS)

    def release(self) -> float:
        self.connection.commit()
        return time.perf_counter()

    def close(self) -> None:
        self.connection.close()
        self._watch.close()


def put_bodies(records: Sequence[bytes], stream: str) -> list[bytes]:
    calls = []
    for start in range(0, len(records), RECORDS_PER_CALL):
        chunk = records[start : start + RECORDS_PER_CALL]
        entries = [{"Data": base64.b64encode(r).decode()} for r in chunk]
        calls.append(orjson.dumps({"DeliveryStreamName": stream, "Records": entries}))
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


def wait_delivered(service: ServiceProcess, stream: str, count: int) -> None:
    """Poll /health over one kept-alive connection until `count` records are delivered."""
    health = http.client.HTTPConnection("127.0.0.1", service.port)
    try:
        while True:
            health.request("GET", "/health")
            streams = orjson.loads(health.getresponse().read())["streams"]
            if streams[stream]["DeliveryToRedshift.Records"] >= count:
                return
            time.sleep(POLL_SECONDS)
    finally:
        health.close()


class Bench:
    """The servers and the records one run shares between its rounds."""

    def __init__(
        self, postgres: PostgresServer, s3: S3Server, workdir: Path, records: list[bytes]
    ) -> None:
        self.postgres = postgres
        self.s3 = s3
        self.workdir = workdir
        self.records = records
        self.buffer_mib = 0
        self.batches: list[list[bytes]] = []
        self._runs = 0

    def cut(self, buffer_mib: int) -> None:
        self.buffer_mib = buffer_mib
        self.batches = batches(self.records, buffer_mib * MIB)

    def fresh_place(self, name: str) -> tuple[str, str]:
        """A new table and bucket for one run."""
        self._runs += 1
        table, bucket = f"bench_{name}", f"bench-{name.replace('_', '-')}-{self._runs}"
        create_table(self.postgres, table)
        self.s3.create_bucket(bucket)
        return table, bucket

    def check(self, table: str, bucket: str, manifests: str | None) -> None:
        """Every record loaded and, unless `manifests` is None, one manifest per batch."""
        loaded = row_count(self.postgres, table)
        assert loaded == len(self.records), f"{table}: {loaded} rows for {len(self.records)}"
        if manifests is None:
            return  # the interval may cut a buffer early while the records come in
        staged = len(self.s3.list_keys(bucket, manifests))
        assert staged == len(self.batches), f"{staged} manifests for {len(self.batches)} batches"

    def baseline(self) -> float:
        """Seconds from the unlock until the baseline committed its last batch."""
        table, bucket = self.fresh_place("baseline")
        lock = TableLock(self.postgres, table)
        load = stage_and_copy(self.s3, self.postgres.conninfo, bucket, table, self.batches)
        try:
            with ThreadPoolExecutor(1) as thread:
                finished = thread.submit(_timed, lambda: asyncio.run(load))
                lock.wait_for_copy()
                started = lock.release()
                seconds = finished.result() - started
        finally:
            lock.close()
        self.check(table, bucket, "baseline/manifests/")
        return seconds

    def stream(self, name: str, table: str, bucket: str, interval: int = 1) -> dict[str, Any]:
        return {
            "DeliveryStreamName": name,
            "RedshiftDestinationConfiguration": {
                "ClusterJDBCURL": self.postgres.jdbc_url(),
                "CopyCommand": {"DataTableName": table},
                "Username": USER,
                "Password": PASSWORD,
                "S3Configuration": {
                    "BucketARN": f"arn:aws:s3:::{bucket}",
                    "Prefix": "staging/",
                    "BufferingHints": {
                        "SizeInMBs": self.buffer_mib,
                        "IntervalInSeconds": interval,
                    },
                },
            },
        }

    def end_to_end(self) -> float:
        """Seconds from the first put until the service counts every record delivered."""
        table, bucket = self.fresh_place("end_to_end")
        service = ServiceProcess(
            self.workdir / bucket, [self.stream("bench", table, bucket)], env=self.s3.env()
        )
        service.start()
        try:
            started = time.perf_counter()
            asyncio.run(send(f"{service.url}/", put_bodies(self.records, "bench")))
            wait_delivered(service, "bench", len(self.records))
            seconds = time.perf_counter() - started
        finally:
            service.terminate()
        self.check(table, bucket, None)
        return seconds


class LoadedService:
    """One service with a stream (and table) per round, every record of each acknowledged
    while a lock keeps its first COPY waiting: a round unlocks one stream's table, so that it
    is timed right beside its baseline round, with no ingest in between."""

    def __init__(self, bench: Bench, rounds: int) -> None:
        self.bench = bench
        self.names = [f"round{turn}" for turn in range(rounds)]
        self.places = [bench.fresh_place(f"service_{turn}") for turn in range(rounds)]
        streams = [
            bench.stream(name, *place, interval=LOCKED_INTERVAL_SECONDS)
            for name, place in zip(self.names, self.places, strict=True)
        ]
        self.service = ServiceProcess(bench.workdir / "service", streams, env=bench.s3.env())
        self.service.start()
        self.locks = [TableLock(bench.postgres, table) for table, _ in self.places]
        for name in self.names:
            asyncio.run(send(f"{self.service.url}/", put_bodies(bench.records, name)))
        for lock in self.locks:
            lock.wait_for_copy()

    def run(self, turn: int) -> float:
        """Seconds from the unlock until the service counts the round's records delivered."""
        started = self.locks[turn].release()
        wait_delivered(self.service, self.names[turn], len(self.bench.records))
        seconds = time.perf_counter() - started
        self.bench.check(*self.places[turn], "staging/manifests/")
        return seconds

    def close(self) -> None:
        for lock in self.locks:
            lock.close()
        self.service.terminate()


def _timed(work: Callable[[], object]) -> float:
    work()
    return time.perf_counter()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--buffer-mib", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    records = make_records(args.records)
    count, data_mib = len(records), sum(map(len, records)) / MIB
    workdir = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    s3, s3_proc = start_seaweedfs(workdir / "s3")
    postgres = start_postgres()
    ratios: list[float] = []
    try:
        bench = Bench(postgres, s3, workdir, records)
        bench.cut(args.buffer_mib)
        print(f"{count} records, {data_mib:.1f} MiB, {len(bench.batches)} batches of "
              f"{args.buffer_mib} MiB at most, {args.rounds} rounds")  # fmt: skip
        service = LoadedService(bench, args.rounds)
        try:
            bench.baseline()  # warm-up, not counted
            for turn in range(args.rounds):
                # Alternate which side goes first: neither always gets the warmer machine.
                if turn % 2:
                    service_s, base_s = service.run(turn), bench.baseline()
                else:
                    base_s, service_s = bench.baseline(), service.run(turn)
                ratios.append(base_s / service_s)
                print(
                    f"round {turn + 1}: baseline {count / base_s:>9,.0f} records/s "
                    f"({base_s:.2f} s), service {count / service_s:>9,.0f} records/s "
                    f"({service_s:.2f} s), ratio {ratios[-1]:.2f}",
                    flush=True,
                )
        finally:
            service.close()
        end_to_end_s = bench.end_to_end()
    finally:
        postgres.stop("immediate")
        postgres.remove()
        stop(s3_proc)
        shutil.rmtree(workdir, ignore_errors=True)  # the logs and objects: hundreds of MiB
    print(
        f"service / baseline (stage + COPY): median {statistics.median(ratios):.2f}, "
        f"spread {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} rounds"
    )
    print(
        f"service, end to end (with ingest): {count / end_to_end_s:>9,.0f} records/s "
        f"({end_to_end_s:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
