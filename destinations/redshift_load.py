"""The two ways a Redshift section's manifest is loaded: COPY from S3 into Amazon Redshift, or
the staged objects streamed through COPY FROM STDIN into PostgreSQL (ours).

Both keep one connection and open a new one after a failure. The Redshift statement goes
through a pluggable `SqlExecutor`, so its exact text is testable without a Redshift cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from destinations.pg_copy import CopyFeed, copy_from_stdin_sql, table_columns
from destinations.redshift_errors import database_error
from firehose.config import RedshiftConfiguration
from firehose.redshift_config import Warehouse, postgres_copy

CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class StagedObject:
    """One object of a manifest: where it is, and its bytes as staged (compressed or not)."""

    bucket: str
    key: str
    body: bytes

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# Awaited by a load before it commits: returns once the objects and manifest are staged, raises
# if they could not be (the load then commits nothing and lets that exception through).
BeforeCommit = Callable[[], Awaitable[None]]


class Loader(Protocol):
    """Loads one manifest; raises `DeliveryError` when the load did not happen.

    `reads_staging`: the load reads the staged objects from S3 (Amazon Redshift), so they and
    the manifest must be there first; otherwise (PostgreSQL) it gets their bytes from memory
    and may send them while they are uploaded, committing only after `before_commit`."""

    target: str
    reads_staging: bool

    async def load(
        self,
        manifest_url: str,
        objects: Sequence[StagedObject],
        before_commit: BeforeCommit | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


def sql_literal(text: str) -> str:
    """A standard SQL string literal: quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def redshift_copy_statement(section: RedshiftConfiguration, manifest_url: str) -> str:
    """Firehose's COPY for one manifest: CopyOptions verbatim, GZIP added for gzipped objects."""
    command = section.copy_command
    columns = f" ({command.data_table_columns})" if command.data_table_columns else ""
    options = command.copy_options or ""
    if section.staged_gzip and not section.copy_says_gzip:
        options = f"{options} GZIP".strip()
    statement = (
        f"COPY {command.data_table_name}{columns} FROM {sql_literal(manifest_url)} "
        f"CREDENTIALS {sql_literal(f'aws_iam_role={section.role_arn}')} MANIFEST"
    )
    return f"{statement} {options}" if options else statement


def _conninfo(warehouse: Warehouse, section: RedshiftConfiguration) -> str:
    """libpq's connection string; it holds the password, so it is never logged."""
    settings: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    settings.update(warehouse.parameters)
    return make_conninfo(
        "",
        host=warehouse.host,
        port=warehouse.port,
        dbname=warehouse.database,
        user=section.username,
        password=section.password.get_secret_value(),
        **settings,
    )


class _Connection:
    """One connection, opened when needed and dropped after any failure."""

    def __init__(self, section: RedshiftConfiguration) -> None:
        warehouse = section.warehouse
        self._conninfo = _conninfo(warehouse, section)
        self.target = (
            f"jdbc:{warehouse.kind}://{warehouse.host}:{warehouse.port}/{warehouse.database}"
        )
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def get(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            try:
                # Autocommit: loads that need a transaction open one explicitly.
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                )
            except psycopg.Error as exc:
                raise database_error(exc, self.target) from None
        return self._connection

    async def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to release
                await connection.close()

    close = drop


class SqlExecutor(Protocol):
    """Runs one statement; raises `DeliveryError` when it fails."""

    async def execute(self, statement: str) -> None: ...

    async def close(self) -> None: ...


class PsycopgExecutor:
    """Statements over the PostgreSQL wire protocol, which Redshift speaks, in autocommit."""

    def __init__(self, section: RedshiftConfiguration) -> None:
        self.connection = _Connection(section)

    async def execute(self, statement: str) -> None:
        connection = await self.connection.get()
        try:
            await connection.execute(statement.encode())
        except psycopg.Error as exc:
            await self.connection.drop()
            raise database_error(exc, self.connection.target) from None

    async def close(self) -> None:
        await self.connection.close()


class RedshiftLoader:
    """Amazon Redshift reads the staged objects from S3 itself: one COPY … MANIFEST."""

    reads_staging = True

    def __init__(self, section: RedshiftConfiguration, executor: SqlExecutor | None = None):
        self.section = section
        self.executor = executor or PsycopgExecutor(section)
        warehouse = section.warehouse
        self.target = f"Redshift {warehouse.host}:{warehouse.port}/{warehouse.database}"

    async def load(
        self,
        manifest_url: str,
        objects: Sequence[StagedObject],
        before_commit: BeforeCommit | None = None,
    ) -> None:
        if before_commit is not None:
            await before_commit()  # the statement commits as it runs: staged first
        await self.executor.execute(redshift_copy_statement(self.section, manifest_url))

    async def close(self) -> None:
        await self.executor.close()


class PostgresLoader:
    """PostgreSQL cannot read S3: the manifest's objects, as staged, go through COPY FROM STDIN,
    all in one transaction, which commits only after `before_commit`."""

    reads_staging = False

    def __init__(self, section: RedshiftConfiguration) -> None:
        self.section = section
        self.copy = postgres_copy(section.copy_command.copy_options)
        self.connection = _Connection(section)
        self.target = f"PostgreSQL {self.connection.target}"
        self._columns: list[str] | None = None

    async def load(
        self,
        manifest_url: str,
        objects: Sequence[StagedObject],
        before_commit: BeforeCommit | None = None,
    ) -> None:
        connection = await self.connection.get()
        command = self.section.copy_command
        try:
            columns = command.columns or await self._table_columns(connection)
            feed = CopyFeed(
                self.copy, columns, gzipped=self.section.staged_gzip, target=self.target
            )
            statement = copy_from_stdin_sql(command.data_table_name, command.columns, self.copy)
            async with connection.transaction():
                async with connection.cursor() as cursor, cursor.copy(statement.encode()) as copy:
                    for staged in objects:
                        async for chunk in feed.chunks(staged.body):
                            await copy.write(chunk)
                if before_commit is not None:
                    await before_commit()  # raising rolls the rows back
        except psycopg.Error as exc:
            await self.connection.drop()
            raise database_error(exc, self.target) from None

    async def _table_columns(
        self, connection: psycopg.AsyncConnection[tuple[object, ...]]
    ) -> list[str]:
        """JSON 'auto' without DataTableColumns fills the table's columns, looked up once."""
        if self.copy.format != "json":
            return []
        if self._columns is None:
            self._columns = await table_columns(
                connection, self.section.copy_command.data_table_name
            )
        return self._columns

    async def close(self) -> None:
        await self.connection.close()


def build_loader(section: RedshiftConfiguration) -> Loader:
    if section.warehouse.kind == "postgresql":
        return PostgresLoader(section)
    return RedshiftLoader(section)
