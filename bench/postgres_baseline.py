"""The PostgreSQL benchmark's baseline: the client calls of the service's loads, made directly.

Per batch, as the Redshift destination does for a `jdbc:postgresql://` warehouse: the records
joined into the object (UNCOMPRESSED), the object and its manifest uploaded to S3 with
aiobotocore while COPY FROM STDIN streams the same bytes in 1 MiB writes, and the COPY's
transaction committed only once both uploads are done. Batches one after the other. The S3
client runs on an event loop of its own, as the service's does: signing an upload hashes its
whole body, which would otherwise hold up the COPY's writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from firehose.loopthread import LoopThread
from firehose.testing.servers import S3Server

MIB = 1024 * 1024
PREFIX = "baseline/"


def copy_statement(table: str) -> str:
    """What the service sends for the default text CopyOptions: split on `|`."""
    return f"COPY {table} FROM STDIN WITH (FORMAT text, DELIMITER '|')"


class S3Client:
    """An aiobotocore S3 client on a loop thread of its own; `put` awaits from any loop."""

    def __init__(self, io: LoopThread, client: Any) -> None:
        self.io = io
        self.client = client

    async def put(self, bucket: str, key: str, body: bytes) -> None:
        await self.io.run(self.client.put_object(Bucket=bucket, Key=key, Body=body))


@asynccontextmanager
async def s3_client(server: S3Server) -> AsyncIterator[S3Client]:
    config = AioConfig(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    made = get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=config,
    )
    io = LoopThread("baseline-s3")
    try:
        client = await io.run(made.__aenter__())
        try:
            yield S3Client(io, client)
        finally:
            await io.run(made.__aexit__(None, None, None))
    finally:
        io.stop()


async def _stage(s3: S3Client, bucket: str, number: int, body: bytes) -> None:
    key = f"{PREFIX}{number:05d}"
    manifest = orjson.dumps({"entries": [{"url": f"s3://{bucket}/{key}", "mandatory": True}]})
    await asyncio.gather(
        s3.put(bucket, key, body), s3.put(bucket, f"{PREFIX}manifests/{number:05d}", manifest)
    )


async def _load(
    s3: S3Client,
    db: psycopg.AsyncConnection[Any],
    bucket: str,
    statement: str,
    number: int,
    records: Sequence[bytes],
) -> None:
    body = b"".join(records)
    staging = asyncio.ensure_future(_stage(s3, bucket, number, body))
    try:
        async with db.transaction():
            async with db.cursor() as cursor, cursor.copy(statement) as copy:
                for start in range(0, len(body), MIB):
                    await copy.write(memoryview(body)[start : start + MIB])
            await staging  # the rows commit only once the object and manifest are staged
    finally:
        await staging


async def stage_and_copy(
    s3_server: S3Server, conninfo: str, bucket: str, table: str, batches: Sequence[Sequence[bytes]]
) -> None:
    """Every batch staged and loaded, in order, one at a time."""
    statement = copy_statement(table)
    async with (
        s3_client(s3_server) as s3,
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as db,
    ):
        for number, records in enumerate(batches):
            await _load(s3, db, bucket, statement, number, records)
