"""COPY FROM STDIN for a PostgreSQL warehouse: the statement for Redshift's CopyOptions, and the
staged bytes turned into what that statement reads (gunzipped, JSON records into rows).

Redshift's text format splits on `|` by default, PostgreSQL's on tab: the statement names the
delimiter, so the same data loads the same way into both.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import psycopg

from destinations.redshift_errors import data_error
from firehose.redshift_config import PostgresCopy
from transforms.record_deaggregation import NotJsonObjects, split_json

CHUNK_BYTES = 1024 * 1024
REDSHIFT_TEXT_DELIMITER = "|"
# COPY's text format: these characters in a value are written as backslash escapes.
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_from_stdin_sql(table: str, columns: list[str], copy: PostgresCopy) -> str:
    """The COPY statement that reads what `CopyFeed` sends for these CopyOptions."""
    column_list = f" ({', '.join(columns)})" if columns else ""
    statement = f"COPY {table}{column_list} FROM STDIN"
    if copy.format == "json":
        return statement  # rows come in COPY's default text format
    options = [f"FORMAT {copy.format}"]
    delimiter = copy.delimiter
    if delimiter is None and copy.format == "text":
        delimiter = REDSHIFT_TEXT_DELIMITER
    if delimiter is not None:
        options.append(f"DELIMITER {_literal(delimiter)}")
    if copy.null is not None:
        options.append(f"NULL {_literal(copy.null)}")
    if copy.quote is not None:
        options.append(f"QUOTE {_literal(copy.quote)}")
    return f"{statement} WITH ({', '.join(options)})"


async def table_columns(connection: psycopg.AsyncConnection[Any], table: str) -> list[str]:
    """The table's columns in order, for JSON 'auto' without DataTableColumns."""
    cursor = await connection.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    )
    return [str(row[0]) for row in await cursor.fetchall()]


class CopyFeed:
    """What one staged object sends to COPY FROM STDIN, in chunks of about a MiB."""

    def __init__(
        self, copy: PostgresCopy, columns: list[str], *, gzipped: bool, target: str
    ) -> None:
        self.copy = copy
        self.columns = columns
        self.gzipped = gzipped
        self.target = target

    async def chunks(self, body: bytes) -> AsyncIterator[bytes | memoryview]:
        if self.copy.format == "json":
            # Parsing is CPU work: off the loop, so ingest is not held up meanwhile.
            rows = await asyncio.to_thread(self._json_rows, body)
            for start in range(0, len(rows), CHUNK_BYTES):
                yield memoryview(rows)[start : start + CHUNK_BYTES]
            return
        if not self.gzipped:
            for start in range(0, len(body), CHUNK_BYTES):
                yield memoryview(body)[start : start + CHUNK_BYTES]
            return
        for piece in _gunzip(body, self.target):
            yield piece

    def _json_rows(self, body: bytes) -> bytes:
        data = b"".join(_gunzip(body, self.target)) if self.gzipped else body
        try:
            objects = _json_objects(data)
        except (NotJsonObjects, orjson.JSONDecodeError) as exc:
            raise data_error(f"JSON 'auto': {exc}", self.target) from None
        columns = [name.lower() for name in self.columns] if self.copy.ignore_case else None
        lines = []
        for value in objects:
            if not isinstance(value, dict):
                raise data_error("JSON 'auto': a record is not a JSON object", self.target)
            if columns is not None:
                value = {key.lower(): item for key, item in value.items()}
            fields = (_text_value(value.get(name)) for name in columns or self.columns)
            lines.append("\t".join(fields))
        lines.append("")
        return "\n".join(lines).encode()


def _json_objects(data: bytes) -> list[Any]:
    """The JSON values of the staged data: one per line usually, else split at `}{`."""
    try:
        return [orjson.loads(line) for line in data.split(b"\n") if line.strip()]
    except orjson.JSONDecodeError:
        return [orjson.loads(piece) for piece in split_json(data)]


def _text_value(value: Any) -> str:
    """A JSON value as COPY's text format writes it: NULL as \\N, nested values as JSON."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.translate(_TEXT_ESCAPES)
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode().translate(_TEXT_ESCAPES)


def _gunzip(body: bytes, target: str) -> Iterator[bytes]:
    """Decompress gzip members as COPY reads them, a chunk at a time."""
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            while data:
                piece = inflater.decompress(data, CHUNK_BYTES)
                data = inflater.unconsumed_tail
                if piece:
                    yield piece
                if inflater.eof:
                    break
            if not inflater.eof:
                raise data_error("GZIP: the staged object ends inside a gzip member", target)
        except zlib.error as exc:
            raise data_error(f"GZIP: the staged object is not gzip: {exc}", target) from None
        data = inflater.unused_data
