"""The columns of the table records are converted into, from whichever source the config names.

Every source ends as `[(column name, HiveType)]`: a column list in the config, an Avro schema
file (`.avsc`, read with fastavro), or a Glue table (`glue.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro.schema

from firehose.formats.hive_types import HiveType, HiveTypeError, parse_hive_type

Columns = list[tuple[str, HiveType]]
_AVRO_PRIMITIVES = {
    "string": "string",
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "fixed": "binary",
    "enum": "string",
}


class SchemaError(ValueError):
    """A schema that cannot be read, or holds a type no writer here supports."""


def parse_columns(pairs: list[tuple[str, str]]) -> Columns:
    """`(name, type string)` pairs (a config's or a Glue table's) as parsed columns."""
    columns: Columns = []
    for name, text in pairs:
        try:
            columns.append((name.lower(), parse_hive_type(text)))
        except HiveTypeError as exc:
            raise SchemaError(f"column {name!r}: {exc}") from None
    if not columns:
        raise SchemaError("the schema has no columns")
    return columns


def avro_file_columns(path: Path) -> Columns:
    """The fields of the record an `.avsc` file describes, as columns."""
    try:
        expanded = fastavro.schema.parse_schema(
            json.loads(path.read_text()), expand=True, _write_hint=False
        )
    except (OSError, ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"{path}: {exc}") from None
    if not isinstance(expanded, dict) or expanded.get("type") != "record":
        raise SchemaError(f"{path}: the schema must be a record")
    try:
        return [(field["name"].lower(), _avro_type(field["type"])) for field in expanded["fields"]]
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


def _avro_type(schema: Any) -> HiveType:
    if isinstance(schema, list):
        others = [branch for branch in schema if branch != "null"]
        if len(others) != 1:
            raise SchemaError("unions other than [null, T] are not supported")
        return _avro_type(others[0])
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical == "decimal":
        return HiveType("decimal", (schema["precision"], schema.get("scale", 0)))
    if logical == "date":
        return HiveType("date")
    if logical in ("timestamp-millis", "timestamp-micros", "timestamp-nanos"):
        return HiveType("timestamp")
    if kind == "array":
        return HiveType("array", fields=(("element", _avro_type(schema["items"])),))
    if kind == "map":
        value = _avro_type(schema["values"])
        return HiveType("map", fields=(("key", HiveType("string")), ("value", value)))
    if kind == "record":
        fields = tuple((f["name"].lower(), _avro_type(f["type"])) for f in schema["fields"])
        return HiveType("struct", fields=fields)
    if kind in _AVRO_PRIMITIVES:
        return HiveType(_AVRO_PRIMITIVES[kind])
    raise SchemaError(f"Avro type {kind!r} is not supported")
