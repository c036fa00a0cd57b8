"""A stream's running totals carried from one runtime to the next: an UpdateDestination or an
encryption change runs a new runtime on the same log, and the stream's metrics must go on
counting where they were, not start again from 0."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from firehose.stream import DeliveryStream


def carry_totals(previous: DeliveryStream, current: DeliveryStream) -> None:
    """Add what `previous` counted to `current`'s counters (which may have counted already:
    the log's replay starts as it opens). A destination's totals are carried only to one of
    the same kind: another kind's metrics have other names."""
    _add(previous.counters, current.counters)
    _add(previous.processing, current.processing)
    pairs = [(previous.main, current.main)]
    if previous.backup is not None and current.backup is not None:
        pairs.append((previous.backup, current.backup))
    for before, after in pairs:
        if before.destination.counters.kind == after.destination.counters.kind:
            _add(before.destination.counters, after.destination.counters)


def _add(source: Any, into: Any) -> None:
    """Numbers are summed (per key for a dict of them); any other value (the last error, a
    recovery report) stays `into`'s, or becomes `source`'s where `into` has none."""
    for item in fields(into):
        mine, theirs = getattr(into, item.name), getattr(source, item.name)
        if isinstance(mine, bool):
            continue
        if isinstance(mine, int | float):
            setattr(into, item.name, mine + theirs)
        elif isinstance(mine, dict):
            for key, amount in theirs.items():
                mine[key] = mine.get(key, 0) + amount
        elif mine is None:
            setattr(into, item.name, theirs)
