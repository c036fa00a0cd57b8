"""A subset of Java's `DateTimeFormatter` patterns, as Firehose's `!{timestamp:…}` uses them.

Patterns are compiled once into formatter functions; formatting an instant is then cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache

Formatter = Callable[[datetime], str]

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SUPPORTED_LETTERS = "y Y u M L d D E a H h K k m s S w Z X x"


def _us_week(moment: datetime) -> tuple[int, int]:
    """(week-based year, week): weeks start on Sunday and week 1 is the one holding January 1."""
    day = moment.date()
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    year = (sunday + timedelta(days=6)).year
    january_first = date(year, 1, 1)
    first_sunday = january_first - timedelta(days=(january_first.weekday() + 1) % 7)
    return year, (sunday - first_sunday).days // 7 + 1


def _number(field: Callable[[datetime], int], count: int) -> Formatter:
    """Java numbers: one letter prints the value as is, more letters pad it with zeros."""
    return lambda moment: f"{field(moment):0{count}d}"


def _year(field: Callable[[datetime], int], count: int) -> Formatter:
    """Two letters print the last two digits; any other count pads to that width."""
    if count == 2:
        return lambda moment: f"{field(moment) % 100:02d}"
    return _number(field, count)


def _text(names: tuple[str, ...], index: Callable[[datetime], int], count: int) -> Formatter:
    """Up to three letters print the short form (`Aug`), four the full, five the narrow."""
    width = {4: None, 5: 1}.get(count, 3)
    return lambda moment: names[index(moment)][:width]


def _offset(count: int, zero: str | None, colon: bool, minutes: str) -> Formatter:
    """UTC offset as `+HH[MM]`; `zero` (e.g. `Z`) replaces a zero offset when given."""

    def format_offset(moment: datetime) -> str:
        total = int((moment.utcoffset() or timedelta()).total_seconds()) // 60
        if total == 0 and zero is not None:
            return zero
        hours, mins = divmod(abs(total), 60)
        text = f"{'-' if total < 0 else '+'}{hours:02d}"
        if minutes == "always" or (minutes == "nonzero" and mins):
            text += f"{':' if colon else ''}{mins:02d}"
        return text

    return format_offset


def _fraction(count: int) -> Formatter:
    """`S` letters: that many leading digits of the fraction of a second."""
    return lambda moment: f"{moment.microsecond:06d}000"[:count]


# letter → (largest count Java accepts here, builder of the formatter for a count)
_LETTERS: dict[str, tuple[int, Callable[[int], Formatter | None]]] = {
    "y": (19, lambda n: _year(lambda m: m.year, n)),
    "u": (19, lambda n: _year(lambda m: m.year, n)),
    # Week-based year and week as Java counts them in the US locale (AWS's).
    "Y": (19, lambda n: _year(lambda m: _us_week(m)[0], n)),
    "w": (2, lambda n: _number(lambda m: _us_week(m)[1], n)),
    "M": (5, lambda n: _number(lambda m: m.month, n) if n <= 2 else _month_text(n)),
    "L": (5, lambda n: _number(lambda m: m.month, n) if n <= 2 else _month_text(n)),
    "d": (2, lambda n: _number(lambda m: m.day, n)),
    "D": (3, lambda n: _number(lambda m: m.timetuple().tm_yday, n)),
    "E": (5, lambda n: _text(_WEEKDAYS, lambda m: m.weekday(), n)),
    "a": (1, lambda n: lambda m: "AM" if m.hour < 12 else "PM"),
    "H": (2, lambda n: _number(lambda m: m.hour, n)),
    "h": (2, lambda n: _number(lambda m: m.hour % 12 or 12, n)),
    "K": (2, lambda n: _number(lambda m: m.hour % 12, n)),
    "k": (2, lambda n: _number(lambda m: m.hour or 24, n)),
    "m": (2, lambda n: _number(lambda m: m.minute, n)),
    "s": (2, lambda n: _number(lambda m: m.second, n)),
    "S": (9, _fraction),
    "Z": (5, lambda n: _offset(n, None, False, "always") if n <= 3 else _zulu_offset(n)),
    "X": (3, lambda n: _offset(n, "Z", n == 3, "nonzero" if n == 1 else "always")),
    "x": (3, lambda n: _offset(n, None, n == 3, "nonzero" if n == 1 else "always")),
}


def _month_text(count: int) -> Formatter:
    return _text(_MONTHS, lambda m: m.month - 1, count)


def _zulu_offset(count: int) -> Formatter | None:
    # ZZZZ is the localized `GMT+09:00` form, which we do not support; ZZZZZ is `+09:00` or `Z`.
    return _offset(count, "Z", True, "always") if count == 5 else None


def _literal(text: str) -> Formatter:
    return lambda moment: text


def _quoted_literal(pattern: str, start: int) -> tuple[str, int] | None:
    """The text of the quoted literal opening at `start` and the index after it; None if open."""
    i = start + 1
    while i < len(pattern):
        if pattern[i] == "'":
            if pattern[i + 1 : i + 2] != "'":
                text = pattern[start + 1 : i]
                return (text.replace("''", "'") if text else "'"), i + 1
            i += 1
        i += 1
    return None


@lru_cache(maxsize=256)
def compile_java_pattern(pattern: str) -> tuple[tuple[Formatter, ...], tuple[str, ...]]:
    """Formatters for a pattern, or the problems that make it unusable; parsed once per pattern."""
    formatters: list[Formatter] = []
    problems: list[str] = []
    literal: list[str] = []
    optional_depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char.isascii() and char.isalpha():
            end = i
            while end < len(pattern) and pattern[end] == char:
                end += 1
            run = pattern[i:end]
            formatter = _letter_formatter(char, len(run), problems)
            if formatter is not None:
                if literal:
                    formatters.append(_literal("".join(literal)))
                    literal.clear()
                formatters.append(formatter)
            i = end
        elif char == "'":
            quoted = _quoted_literal(pattern, i)
            if quoted is None:
                problems.append(f"`{pattern[i:]}` opens a quoted literal that is never closed")
                break
            literal.append(quoted[0])
            i = quoted[1]
        else:
            # Every field is known when formatting, so optional sections always print.
            if char == "[":
                optional_depth += 1
            elif char == "]":
                if optional_depth == 0:
                    problems.append("`]` closes an optional section that was never opened")
                optional_depth = max(0, optional_depth - 1)
            elif char in "{}#":
                problems.append(f"`{char}` is reserved; quote it to use it as text: '{char}'")
            else:
                literal.append(char)
            i += 1
    if literal:
        formatters.append(_literal("".join(literal)))
    return tuple(formatters), tuple(problems)


def _letter_formatter(letter: str, count: int, problems: list[str]) -> Formatter | None:
    entry = _LETTERS.get(letter)
    if entry is None:
        problems.append(
            f"pattern letter `{letter}` is not supported; use {_SUPPORTED_LETTERS} "
            f"and quote other text, e.g. 'T'"
        )
        return None
    largest, build = entry
    if count > largest:
        problems.append(f"`{letter * count}` has too many pattern letters")
        return None
    formatter = build(count)
    if formatter is None:
        problems.append(f"`{letter * count}` is a form of `{letter}` that is not supported")
    return formatter


def java_pattern_problems(pattern: str) -> list[str]:
    """Why a Java `DateTimeFormatter` pattern cannot be used here; [] when it can."""
    return list(compile_java_pattern(pattern)[1])


def format_java_timestamp(pattern: str, moment: datetime) -> str:
    """Format `moment` like Java's `DateTimeFormatter.ofPattern(pattern)` in English.

    `w` and `Y` count US weeks (Sunday first, week 1 holds January 1). A naive `moment`
    counts as UTC for the offset letters.
    """
    formatters, problems = compile_java_pattern(pattern)
    if problems:
        raise ValueError(f"timestamp pattern {pattern!r}: " + "; ".join(problems))
    return "".join(formatter(moment) for formatter in formatters)
