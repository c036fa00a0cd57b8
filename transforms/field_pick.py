"""The fast path of `MetadataExtraction`: a query that only picks fields (`{k: .a.b, c: .c}`)
evaluated with orjson and dict lookups, about ten times faster than jq per record.

It gives keys only where jq would give exactly the same ones (strings as they are, booleans,
numbers written as jq 1.6's `tostring` writes a double); on anything else (not a JSON object,
a missing field, null, a nested value, a number orjson cannot hold) it gives None and the caller
asks jq, whose answer, keys or error, is then the one used.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from firehose.jq_query import ObjectQuery


class FieldPicker:
    """Evaluates a field-picking `ObjectQuery` on one record."""

    __slots__ = ("_fields",)

    def __init__(self, query: ObjectQuery) -> None:
        assert query.only_picks_fields
        self._fields = [
            (key, path) for key, path in zip(query.keys, query.paths, strict=True) if path
        ]

    def keys(self, data: bytes | memoryview) -> dict[str, str] | None:
        """The record's keys as jq would give them, or None when only jq can tell."""
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        keys: dict[str, str] = {}
        for key, path in self._fields:
            value: Any = document
            for step in path:
                if type(value) is not dict:
                    return None
                value = value.get(step)
            kind = type(value)
            if kind is str:
                keys[key] = value
            elif kind is bool:
                keys[key] = "true" if value else "false"
            elif kind is float or (kind is int and value != 0):
                # An int 0 may have been written -0, which jq keeps and orjson does not.
                text = jq_number(float(value))
                if text is None:
                    return None
                keys[key] = text
            else:
                return None
        return keys


def jq_number(number: float) -> str | None:
    """`number` as jq 1.6's `tostring` writes a double (`1`, `1.5`, `1e+17`, `1e-05`), or None
    for what JSON cannot hold (infinities and NaN, which jq writes its own way).

    jq prints the shortest digits that read back as the same double, as Python's repr does,
    laid out by its own rule: exponent form when the point would be more than 15 places past
    the digits or 4 or more places before them, the exponent signed and at least two digits.
    """
    if not math.isfinite(number):
        return None
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    digits, point = _shortest_digits(abs(number))
    if point <= -4 or point > len(digits) + 15:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exponent = point - 1
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest_digits(number: float) -> tuple[str, int]:
    """The shortest round-trip digits of a non-negative double and the position of the decimal
    point relative to them (0.015 gives ("15", -1); 120.0 gives ("12", 3))."""
    if number == 0:
        return "0", 1
    text = repr(number)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    return digits, point
