"""Timestamp rules of the two JSON deserializers, for one value and for a whole column.

Values become nanoseconds since the epoch (UTC, no zone): the Arrow columns are timestamp[ns].
Per value (`openx_timestamp`, `hive_timestamp`) is the reference; the column forms give the
same answers without Python per value, and raise where they cannot (the caller then goes per
value).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1)
# OpenX's rule: a whole number of 13 characters or more is epoch milliseconds, else seconds.
_MILLIS_LENGTH = 13
_DATE = r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
_TIME = r"(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?"
_OPENX_TEXT = _DATE + r"(?P<sep>T| )" + _TIME + r"(?P<z>Z?)$"
# The same groups as OpenX's: the separator is a space and no `Z` may follow.
_HIVE_TEXT = _DATE + r"(?P<sep> )" + _TIME + r"(?P<z>)$"
_OPENX_RE = re.compile(_OPENX_TEXT)
_HIVE_RE = re.compile(_HIVE_TEXT)
_INTEGER = re.compile(r"^-?\d+$")
_FRACTIONAL = re.compile(r"^-?\d+\.\d+$")


class TimestampError(ValueError):
    """A value no accepted timestamp form matches."""


def _nanos(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise TimestampError(str(exc)) from None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS


def _from_match(match: re.Match[str]) -> int:
    year, month, day, separator, hour, minute, second, fraction, zulu = match.groups()
    if (separator == "T") != (zulu == "Z"):
        raise TimestampError("a 'T' between date and time goes with a closing 'Z'")
    whole = _nanos(int(year), int(month), int(day), int(hour), int(minute), int(second))
    return checked(whole + int((fraction or "").ljust(9, "0")))


def checked(nanos: int) -> int:
    """`nanos` if a timestamp[ns] column holds it (years 1677 to 2262), else TimestampError."""
    if not -(2**63) <= nanos < 2**63:
        raise TimestampError("out of the range of timestamps (years 1677 to 2262)")
    return nanos


def _epoch_text(text: str) -> int | None:
    """OpenX's numbers: whole (seconds, or milliseconds from 13 characters) or fractional
    seconds, kept to the millisecond as OpenX does."""
    if _INTEGER.match(text):
        number = int(text)
        return checked(number * 1_000_000 if len(text) >= _MILLIS_LENGTH else number * _NS)
    if _FRACTIONAL.match(text):
        return checked(int(float(text) * 1000) * 1_000_000)
    return None


def openx_timestamp(value: Any) -> int:
    """`yyyy-MM-dd'T'HH:mm:ss[.S]'Z'`, `yyyy-[M]M-[d]d HH:mm:ss[.S]`, epoch seconds or
    milliseconds, fractional epoch seconds (as a JSON number or string)."""
    if isinstance(value, bool):
        raise TimestampError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        value = repr(value)
    if not isinstance(value, str):
        raise TimestampError("a timestamp must be a string or a number")
    match = _OPENX_RE.match(value)
    if match is not None:
        return _from_match(match)
    nanos = _epoch_text(value)
    if nanos is None:
        raise TimestampError(f"{value[:40]!r} is not a timestamp OpenX reads")
    return nanos


def hive_timestamp(value: Any, formats: Sequence[Callable[[str], int]] = ()) -> int:
    """`formats` in order (Joda patterns or `millis`), else `yyyy-[m]m-[d]d hh:mm:ss[.f…]`."""
    if isinstance(value, int) and not isinstance(value, bool) and formats:
        value = str(value)
    if not isinstance(value, str):
        raise TimestampError("a timestamp must be a JSON string")
    for parse in formats:
        try:
            return parse(value)
        except (TimestampError, ValueError):
            continue
    match = _HIVE_RE.match(value)
    if match is None:
        raise TimestampError(f"{value[:40]!r} matches no timestamp format")
    return _from_match(match)


# -- whole columns -------------------------------------------------------------------------


def _text_column(strings: pa.Array, pattern: str) -> pa.Array:
    parts = pc.extract_regex(strings, pattern)  # nulls where a value does not match
    if parts.null_count != strings.null_count:
        raise TimestampError("a value matches no timestamp form")

    def field(name: str) -> pa.Array:
        return pc.struct_field(parts, name)

    same = pc.equal(pc.equal(field("sep"), "T"), pc.equal(field("z"), "Z"))
    if not pc.all(same).as_py():
        raise TimestampError("a 'T' between date and time goes with a closing 'Z'")
    text = pc.binary_join_element_wise(
        field("y"),
        "-",
        pc.utf8_lpad(field("mo"), 2, "0"),
        "-",
        pc.utf8_lpad(field("d"), 2, "0"),
        " ",
        pc.utf8_lpad(field("h"), 2, "0"),
        ":",
        field("mi"),
        ":",
        field("s"),
        ".",
        pc.utf8_rpad(field("f"), 9, "0"),
        "",
    )
    return pc.cast(text, pa.timestamp("ns"))


def _epoch_column(numbers: pa.Array) -> pa.Array:
    if pa.types.is_integer(numbers.type):
        numbers = numbers.cast(pa.int64())
        millis = pc.or_(
            pc.greater_equal(numbers, 10 ** (_MILLIS_LENGTH - 1)),
            pc.less_equal(numbers, -(10 ** (_MILLIS_LENGTH - 2))),
        )
        nanos = pc.multiply_checked(numbers, pc.if_else(millis, 1_000_000, _NS))
    else:
        millis_whole = pc.cast(pc.multiply(numbers, 1000.0), pa.int64(), safe=False)
        nanos = pc.multiply_checked(millis_whole, 1_000_000)
    return nanos.cast(pa.timestamp("ns"))


def timestamp_column(values: pa.Array, *, openx: bool) -> pa.Array:
    """A column as the JSON reader gave it (strings, whole or fractional numbers) as
    timestamp[ns], by the same rules as per value; TimestampError where it cannot."""
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.timestamp("ns"))
    if pa.types.is_string(kind):
        return _text_column(values, _OPENX_TEXT if openx else _HIVE_TEXT)
    if openx and pa.types.is_integer(kind):
        return _epoch_column(values)
    # Per value, a float's text decides; beyond 1e15 Python writes it with an exponent.
    if openx and pa.types.is_floating(kind) and pc.max(pc.abs(values)).as_py() < 1e15:
        return _epoch_column(values)
    raise TimestampError(f"a {kind} column is not a timestamp column")


def utc_nanos(moment: datetime) -> int:
    """A parsed date-time as nanoseconds since the epoch; aware ones are moved to UTC first."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    delta = moment - _EPOCH
    return checked((delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000)
