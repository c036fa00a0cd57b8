"""Naming what a misspelt word probably meant: one rule for field names and allowed values."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

# Low enough that `gz` finds `gzip` (they are 0.67 alike); difflib's usual 0.6 floor.
_CUTOFF = 0.6


def closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate `word` most likely means: the same letters in another case first, then the
    most alike ignoring case; None when none is close."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    wanted = word.lower()
    if wanted in by_lower:
        return by_lower[wanted]
    near = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=_CUTOFF)
    return by_lower[near[0]] if near else None


def _same(name: str) -> str:
    return name


class NotOneOf(ValueError):
    """A value outside a fixed set of names, which the message lists with the nearest one.

    `text(spell)` says it with every name respelled, so a snake_case config reads `gzip` where
    the API says `GZIP`.
    """

    def __init__(self, given: str, choices: Sequence[str]) -> None:
        self.given = given
        self.choices = tuple(choices)
        super().__init__(self.text())

    def text(self, spell: Callable[[str], str] = _same) -> str:
        """`must be one of A, B (did you mean A?)`, each name passed through `spell`."""
        choices = [spell(choice) for choice in self.choices]
        message = f"must be one of {', '.join(choices)}"
        near = closest(self.given, choices)
        if near is None:
            return message
        exactly = "exactly so: " if near.lower() == self.given.lower() else ""
        return f"{message} ({exactly}did you mean {near}?)"
