"""Glue/Hive column types (`array<struct<a:int,b:string>>`) and the Arrow type each becomes.

One parser for every schema source: Glue tables, column lists in the config and Avro schema
files all end up as `HiveType` trees, so every writer sees the same types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    # Nanoseconds: OpenX timestamps may carry up to 9 fraction digits.
    "timestamp": pa.timestamp("ns"),
    "binary": pa.binary(),
}
INTEGER_RANGES = {
    "tinyint": (-(2**7), 2**7 - 1),
    "smallint": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_TOKEN = re.compile(r"\s*([A-Za-z_][\w]*|\d+|[<>(),:])")


class HiveTypeError(ValueError):
    """A type string that is not a Hive type this service can write."""


@dataclass(frozen=True)
class HiveType:
    """One parsed type: `name` (`int`, `decimal`, `struct`…), its numbers (`decimal(10,2)`:
    (10, 2); `varchar(5)`: (5,)) and its children (array: element; map: key, value; struct:
    its fields in order)."""

    name: str
    args: tuple[int, ...] = ()
    fields: tuple[tuple[str, HiveType], ...] = ()

    @property
    def arrow(self) -> pa.DataType:
        if self.name in _PRIMITIVES:
            return _PRIMITIVES[self.name]
        if self.name in ("varchar", "char"):
            return pa.string()
        if self.name == "decimal":
            return pa.decimal128(*self.args)
        if self.name == "array":
            return pa.list_(self.fields[0][1].arrow)
        if self.name == "map":
            return pa.map_(self.fields[0][1].arrow, self.fields[1][1].arrow)
        return pa.struct([pa.field(name, child.arrow) for name, child in self.fields])

    @property
    def children(self) -> list[HiveType]:
        return [child for _, child in self.fields]

    def __str__(self) -> str:
        if self.args:
            return f"{self.name}({','.join(map(str, self.args))})"
        if self.name in ("array", "map"):
            return f"{self.name}<{','.join(str(child) for child in self.children)}>"
        if self.name == "struct":
            return f"struct<{','.join(f'{name}:{child}' for name, child in self.fields)}>"
        return self.name


def parse_hive_type(text: str) -> HiveType:
    """The type `text` names, nested to any depth; HiveTypeError says where it goes wrong."""
    tokens: list[str] = []
    at = 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None:
            raise HiveTypeError(f"{text!r}: unexpected {text[at:].strip()[:10]!r}")
        tokens.append(match.group(1))
        at = match.end()
    parser = _Parser(text, tokens)
    parsed = parser.type()
    if parser.at != len(tokens):
        raise HiveTypeError(f"{text!r}: unexpected {tokens[parser.at]!r} after the type")
    return parsed


class _Parser:
    def __init__(self, text: str, tokens: list[str]) -> None:
        self.text, self.tokens, self.at = text, tokens, 0

    def _next(self) -> str:
        if self.at >= len(self.tokens):
            raise HiveTypeError(f"{self.text!r}: ends too early")
        self.at += 1
        return self.tokens[self.at - 1]

    def _expect(self, token: str) -> None:
        got = self._next()
        if got != token:
            raise HiveTypeError(f"{self.text!r}: expected {token!r}, got {got!r}")

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _number(self) -> int:
        token = self._next()
        if not token.isdigit():
            raise HiveTypeError(f"{self.text!r}: expected a number, got {token!r}")
        return int(token)

    def type(self) -> HiveType:
        name = self._next().lower()
        if name in _PRIMITIVES:
            return HiveType(name)
        if name in ("varchar", "char"):
            self._expect("(")
            length = self._number()
            self._expect(")")
            if length < 1:
                raise HiveTypeError(f"{self.text!r}: {name} length must be at least 1")
            return HiveType(name, (length,))
        if name == "decimal":
            return HiveType("decimal", self._decimal_args())
        if name == "array":
            self._expect("<")
            element = self.type()
            self._expect(">")
            return HiveType("array", fields=(("element", element),))
        if name == "map":
            self._expect("<")
            key = self.type()
            self._expect(",")
            value = self.type()
            self._expect(">")
            if key.name in ("array", "map", "struct"):
                raise HiveTypeError(f"{self.text!r}: a map key must be a primitive type")
            return HiveType("map", fields=(("key", key), ("value", value)))
        if name == "struct":
            return HiveType("struct", fields=self._struct_fields())
        raise HiveTypeError(
            f"{self.text!r}: unknown type {name!r} (uniontype is not supported)"
            if name == "uniontype"
            else f"{self.text!r}: unknown type {name!r}"
        )

    def _decimal_args(self) -> tuple[int, int]:
        if self._peek() != "(":
            return (10, 0)  # Hive's `decimal` alone
        self._expect("(")
        precision = self._number()
        scale = 0
        if self._peek() == ",":
            self._expect(",")
            scale = self._number()
        self._expect(")")
        if not 1 <= precision <= 38 or scale > precision:
            raise HiveTypeError(
                f"{self.text!r}: decimal needs 1 <= precision <= 38 and scale <= precision"
            )
        return (precision, scale)

    def _struct_fields(self) -> tuple[tuple[str, HiveType], ...]:
        self._expect("<")
        fields: list[tuple[str, HiveType]] = []
        while True:
            name = self._next()
            self._expect(":")
            fields.append((name.lower(), self.type()))
            token = self._next()
            if token == ">":
                break
            if token != ",":
                raise HiveTypeError(f"{self.text!r}: expected ',' or '>', got {token!r}")
        names = [name for name, _ in fields]
        if len(set(names)) != len(names):
            raise HiveTypeError(f"{self.text!r}: a struct field name appears twice")
        return tuple(fields)
