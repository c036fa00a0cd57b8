"""The index a document goes to: `IndexName` plus the UTC arrival time cut to the rotation period.

Names are computed once per arrival hour (every period is whole hours), so a batch costs a dict
look-up per record, not a date format.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from firehose.javatime import format_java_timestamp

# Java patterns of the suffix each period appends; `YYYY` and `ww` count US weeks (javatime).
ROTATION_PATTERNS: dict[str, str | None] = {
    "NoRotation": None,
    "OneHour": "yyyy-MM-dd-HH",
    "OneDay": "yyyy-MM-dd",
    "OneWeek": "YYYY-'w'ww",
    "OneMonth": "yyyy-MM",
}
HOUR_MS = 3_600_000
_CACHE_LIMIT = 4096  # distinct hours remembered; a backlog spanning more starts over


def index_name(base: str, period: str, arrival_ms: int) -> str:
    """The index for a record that arrived at `arrival_ms` (epoch milliseconds)."""
    pattern = ROTATION_PATTERNS[period]
    if pattern is None:
        return base
    moment = datetime.fromtimestamp(arrival_ms / 1000, tz=UTC)
    return f"{base}-{format_java_timestamp(pattern, moment)}"


def index_namer(base: str, period: str) -> Callable[[int], str]:
    """`index_name` for one section, remembered per arrival hour."""
    if ROTATION_PATTERNS[period] is None:
        return lambda arrival_ms: base
    names: dict[int, str] = {}

    def name_for(arrival_ms: int) -> str:
        hour = arrival_ms // HOUR_MS
        name = names.get(hour)
        if name is None:
            if len(names) >= _CACHE_LIMIT:
                names.clear()
            name = names[hour] = index_name(base, period, hour * HOUR_MS)
        return name

    return name_for
