"""One JSON value into the Python value of its column, by the deserializer's rules.

This is the reference for every rule: the batch reader (`json_arrow`) takes a faster way
only when it gives the same answers, and comes here for any record it cannot vouch for.
OpenX is lenient (numbers from strings, anything into a `string` column as JSON text); Hive
is strict (a JSON string is never a number, nested JSON never a string).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import orjson

from firehose.formats.hive_types import INTEGER_RANGES, HiveType
from firehose.formats.joda import Parser
from firehose.formats.timestamps import hive_timestamp, openx_timestamp

Converter = Callable[[Any], Any]
_INTEGER_TEXT = re.compile(r"^\s*[-+]?\d+\s*$")
_DATE_TEXT = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
# Room for 38 digits and any scale: the default context keeps only 28.
_DECIMALS = Context(prec=80)


class ValueProblem(ValueError):
    """A value that does not fit its column; the message says which and why."""


@dataclass(frozen=True)
class JsonRules:
    """What the deserializer config says: how keys match columns, how values are read."""

    openx: bool = True
    case_insensitive: bool = True
    dots_to_underscores: bool = False
    column_keys: Mapping[str, str] = field(default_factory=dict)  # column -> JSON key
    timestamp_formats: tuple[Parser, ...] = ()

    def key(self, name: str) -> str:
        """A JSON key as it is compared with column names."""
        if self.dots_to_underscores:
            name = name.replace(".", "_")
        return name.lower() if self.case_insensitive else name

    def source_key(self, column: str) -> str:
        """The (compared form of the) JSON key a top-level column is read from."""
        return self.key(self.column_keys.get(column, column))


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _text(kind: HiveType, rules: JsonRules) -> Converter:
    limit = kind.args[0] if kind.args else None
    pad = kind.name == "char"

    def convert(value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif not rules.openx and isinstance(value, dict | list):
            raise ValueProblem(f"{_kind(value)} given for a {kind} column")
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:  # OpenX keeps nested JSON as its text
            text = orjson.dumps(value).decode()
        if limit is not None:
            text = text[:limit].ljust(limit) if pad else text[:limit]
        return text

    return convert


def _integer(kind: HiveType, rules: JsonRules) -> Converter:
    low, high = INTEGER_RANGES[kind.name]

    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif rules.openx and isinstance(value, str) and _INTEGER_TEXT.match(value):
            number = int(value)
        else:
            raise ValueProblem(f"{_kind(value)} given for a {kind} column: {value!r:.40}")
        if not low <= number <= high:
            raise ValueProblem(f"{number} is out of the range of {kind}")
        return number

    return convert


def _floating(kind: HiveType, rules: JsonRules) -> Converter:
    def convert(value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if rules.openx and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueProblem(f"{_kind(value)} given for a {kind} column: {value!r:.40}")

    return convert


def _boolean(kind: HiveType, rules: JsonRules) -> Converter:
    def convert(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if rules.openx and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueProblem(f"{_kind(value)} given for a boolean column: {value!r:.40}")

    return convert


def _decimal(kind: HiveType, rules: JsonRules) -> Converter:
    precision, scale = kind.args
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(f"1E{precision - scale}")

    def convert(value: Any) -> Decimal:
        # Strings too, for both: a decimal's digits are often sent quoted to keep them exact.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueProblem(f"{_kind(value)} given for a {kind} column")
        try:
            number = Decimal(value if isinstance(value, str | int) else repr(value))
            rounded = number.quantize(quantum, rounding=ROUND_HALF_UP, context=_DECIMALS)
        except InvalidOperation:
            raise ValueProblem(f"{value!r:.40} is not a {kind}") from None
        if not rounded.is_finite() or rounded.copy_abs() >= limit:
            raise ValueProblem(f"{value!r:.40} is out of the range of {kind}")
        return rounded

    return convert


def _date(kind: HiveType, rules: JsonRules) -> Converter:
    def convert(value: Any) -> date:
        match = _DATE_TEXT.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueProblem(f"{value!r:.40} is not a date (yyyy-MM-dd)")
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError as exc:
            raise ValueProblem(f"{value!r:.40} is not a date: {exc}") from None

    return convert


def _timestamp(kind: HiveType, rules: JsonRules) -> Converter:
    def convert(value: Any) -> int:
        try:
            if rules.openx:
                return openx_timestamp(value)
            return hive_timestamp(value, rules.timestamp_formats)
        except ValueError as exc:
            raise ValueProblem(f"timestamp column: {exc}") from None

    return convert


def _binary(kind: HiveType, rules: JsonRules) -> Converter:
    def convert(value: Any) -> bytes:
        if not isinstance(value, str):
            raise ValueProblem(f"{_kind(value)} given for a binary column")
        return value.encode()

    return convert


def _array(kind: HiveType, rules: JsonRules) -> Converter:
    element = converter(kind.children[0], rules)

    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueProblem(f"{_kind(value)} given for an {kind} column")
        return [None if item is None else element(item) for item in value]

    return convert


def _map(kind: HiveType, rules: JsonRules) -> Converter:
    key_type, value_type = kind.children
    keys = converter(key_type, JsonRules(openx=True))  # map keys are always JSON strings
    values = converter(value_type, rules)

    def convert(value: Any) -> list[tuple[Any, Any]]:
        if not isinstance(value, dict):
            raise ValueProblem(f"{_kind(value)} given for a {kind} column")
        return [(keys(k), None if v is None else values(v)) for k, v in value.items()]

    return convert


def _struct(kind: HiveType, rules: JsonRules) -> Converter:
    fields = [(name, rules.key(name), converter(child, rules)) for name, child in kind.fields]

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueProblem(f"{_kind(value)} given for a struct column")
        keyed = {rules.key(k): v for k, v in value.items()}
        out = {}
        for name, key, convert_field in fields:
            item = keyed.get(key)
            out[name] = None if item is None else convert_field(item)
        return out

    return convert


_CONVERTERS: dict[str, Callable[[HiveType, JsonRules], Converter]] = {
    "string": _text,
    "varchar": _text,
    "char": _text,
    "boolean": _boolean,
    "float": _floating,
    "double": _floating,
    "decimal": _decimal,
    "date": _date,
    "timestamp": _timestamp,
    "binary": _binary,
    "array": _array,
    "map": _map,
    "struct": _struct,
    **dict.fromkeys(INTEGER_RANGES, _integer),
}


def converter(kind: HiveType, rules: JsonRules) -> Converter:
    """The function that turns a (non-null) JSON value into a value of `kind`."""
    return _CONVERTERS[kind.name](kind, rules)


class RowReader:
    """One JSON object into its row: a value (or None) per column, in column order."""

    def __init__(self, columns: list[tuple[str, HiveType]], rules: JsonRules) -> None:
        self.rules = rules
        self._columns = [
            (name, rules.source_key(name), converter(kind, rules)) for name, kind in columns
        ]

    def row(self, document: Any) -> list[Any]:
        if not isinstance(document, dict):
            raise ValueProblem(f"the record is {_kind(document)}, not a JSON object")
        key = self.rules.key
        keyed = {key(name): value for name, value in document.items()}
        row = []
        for name, source, convert in self._columns:
            value = keyed.get(source)
            try:
                row.append(None if value is None else convert(value))
            except ValueProblem as exc:
                raise ValueProblem(f"column {name!r}: {exc}") from None
        return row
