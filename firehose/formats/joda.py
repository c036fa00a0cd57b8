"""Hive's `TimestampFormats`: Joda-Time patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSZZ`) or `millis`,
compiled once into parsers that give nanoseconds since the epoch."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from firehose.formats.timestamps import TimestampError, checked, utc_nanos

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# letter -> (group name, regex for the count of letters given)
_FIELDS: dict[str, tuple[str, Callable[[int], str]]] = {
    "y": ("year", lambda n: r"\d{2}" if n == 2 else r"-?\d{1,9}"),
    "Y": ("year", lambda n: r"\d{2}" if n == 2 else r"-?\d{1,9}"),
    "M": ("month", lambda n: r"[A-Za-z]+" if n >= 3 else r"\d{1,2}"),
    "d": ("day", lambda n: r"\d{1,2}"),
    "H": ("hour", lambda n: r"\d{1,2}"),
    "h": ("hour12", lambda n: r"\d{1,2}"),
    "m": ("minute", lambda n: r"\d{1,2}"),
    "s": ("second", lambda n: r"\d{1,2}"),
    "S": ("fraction", lambda n: r"\d{1,9}"),
    "a": ("half", lambda n: r"[AaPp][Mm]"),
    "E": ("weekday", lambda n: r"[A-Za-z]+"),
    "Z": ("offset", lambda n: r"Z|[+-]\d{2}:?\d{2}"),
}
Parser = Callable[[str], int]


class JodaPatternError(ValueError):
    """A pattern that uses letters this service does not parse."""


def _millis(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise TimestampError(f"{text[:40]!r} is not epoch milliseconds")
    return checked(int(text) * 1_000_000)


def compile_format(pattern: str) -> Parser:
    """A parser for one `TimestampFormats` entry; JodaPatternError for what it cannot read."""
    if pattern == "millis":
        return _millis
    regex, at = "", 0
    seen: set[str] = set()
    while at < len(pattern):
        char = pattern[at]
        if char == "'":
            end = pattern.find("'", at + 1)
            if end < 0:
                raise JodaPatternError(f"{pattern!r}: a quote is not closed")
            regex += re.escape(pattern[at + 1 : end] or "'")
            at = end + 1
        elif char.isalpha():
            count = len(pattern) - at - len(pattern[at:].lstrip(char))
            if char not in _FIELDS:
                raise JodaPatternError(f"{pattern!r}: pattern letter {char!r} is not supported")
            name, shape = _FIELDS[char]
            if name in seen:
                raise JodaPatternError(f"{pattern!r}: {char!r} appears twice")
            seen.add(name)
            regex += f"(?P<{name}>{shape(count)})"
            at += count
        else:
            regex += re.escape(char)
            at += 1
    compiled = re.compile(regex + "$")

    def parse(text: str) -> int:
        match = compiled.match(text)
        if match is None:
            raise TimestampError(f"{text[:40]!r} does not match {pattern!r}")
        return _assemble(match.groupdict())

    return parse


def _assemble(parts: dict[str, str]) -> int:
    year = int(parts.get("year") or 1970)
    if len(parts.get("year") or "") == 2:
        year += 2000
    month_text = parts.get("month") or "1"
    month = int(month_text) if month_text.isdigit() else _MONTHS.index(month_text[:3].lower()) + 1
    hour = int(parts.get("hour") or 0)
    if parts.get("hour12") is not None:
        hour = int(parts["hour12"]) % 12 + (12 if (parts.get("half") or "a")[0] in "Pp" else 0)
    fraction = (parts.get("fraction") or "").ljust(9, "0")
    try:
        moment = datetime(
            year, month, int(parts.get("day") or 1), hour,
            int(parts.get("minute") or 0), int(parts.get("second") or 0),
        )  # fmt: skip
    except ValueError as exc:
        raise TimestampError(str(exc)) from None
    offset = parts.get("offset")
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment = moment.replace(tzinfo=timezone(sign * delta))
    return checked(utc_nanos(moment) + int(fraction))
