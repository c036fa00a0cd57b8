"""Avro object container files (ours), written with fastavro: every column nullable,
timestamps as `timestamp-micros`, decimals as `bytes` with the `decimal` logical type."""

from __future__ import annotations

import io
from itertools import count
from typing import Any

import pyarrow as pa
from fastavro.write import Writer

from firehose.format_config import AvroSerDe
from firehose.formats.hive_types import HiveType

_PRIMITIVES = {
    "string": "string",
    "varchar": "string",
    "char": "string",
    "boolean": "boolean",
    "tinyint": "int",
    "smallint": "int",
    "int": "int",
    "integer": "int",
    "bigint": "long",
    "float": "float",
    "double": "double",
    "binary": "bytes",
}


def avro_schema(columns: list[tuple[str, HiveType]]) -> dict[str, Any]:
    """The record schema of the columns; nested structs get generated record names."""
    names = count()

    def of(kind: HiveType) -> Any:
        if kind.name in _PRIMITIVES:
            return _PRIMITIVES[kind.name]
        if kind.name == "decimal":
            precision, scale = kind.args
            return {"type": "bytes", "logicalType": "decimal", "precision": precision,
                    "scale": scale}  # fmt: skip
        if kind.name == "date":
            return {"type": "int", "logicalType": "date"}
        if kind.name == "timestamp":
            return {"type": "long", "logicalType": "timestamp-micros"}
        if kind.name == "array":
            return {"type": "array", "items": ["null", of(kind.children[0])]}
        if kind.name == "map":
            return {"type": "map", "values": ["null", of(kind.children[1])]}
        return record(f"struct{next(names)}", list(kind.fields))

    def record(name: str, fields: list[tuple[str, HiveType]]) -> dict[str, Any]:
        return {
            "type": "record",
            "name": name,
            "fields": [
                {"name": field, "type": ["null", of(kind)], "default": None}
                for field, kind in fields
            ],
        }

    return record("record", columns)


def _for_avro(value: Any, kind: HiveType) -> Any:
    """Arrow's Python values as fastavro takes them: maps as dicts with string keys."""
    if value is None:
        return None
    if kind.name == "map":
        return {str(k): _for_avro(v, kind.children[1]) for k, v in value}
    if kind.name == "array":
        return [_for_avro(item, kind.children[0]) for item in value]
    if kind.name == "struct":
        return {name: _for_avro(value[name], child) for name, child in kind.fields}
    return value


def _needs_fixing(kind: HiveType) -> bool:
    return kind.name == "map" or any(_needs_fixing(child) for child in kind.children)


def _micros(kind: HiveType) -> pa.DataType:
    """Arrow's type with timestamps in microseconds: Python's datetime holds no more."""
    if kind.name == "timestamp":
        return pa.timestamp("us")
    if kind.name == "array":
        return pa.list_(_micros(kind.children[0]))
    if kind.name == "map":
        return pa.map_(_micros(kind.children[0]), _micros(kind.children[1]))
    if kind.name == "struct":
        return pa.struct([pa.field(name, _micros(child)) for name, child in kind.fields])
    return kind.arrow


class AvroWriter:
    """Writes tables into one Avro container file held in memory."""

    def __init__(self, columns: list[tuple[str, HiveType]], options: AvroSerDe) -> None:
        self._columns = columns
        self._sink = io.BytesIO()
        self._writer = Writer(self._sink, avro_schema(columns), codec=options.compression)
        self._schema = pa.schema([pa.field(name, _micros(kind)) for name, kind in columns])

    def write(self, table: pa.Table) -> None:
        table = table.cast(self._schema, safe=False)
        fixing = [(name, kind) for name, kind in self._columns if _needs_fixing(kind)]
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                for name, kind in fixing:
                    row[name] = _for_avro(row[name], kind)
                self._writer.write(row)

    def finish(self) -> bytes:
        self._writer.flush()
        return self._sink.getvalue()
