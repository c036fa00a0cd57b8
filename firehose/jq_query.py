"""What a `MetadataExtractionQuery` builds, read from its text: the keys of its object
constructor, and, for a query that only picks fields, the field paths of each key.

jq has no API to inspect a program, so the query is scanned here: strings (with `\\(…)`
interpolation), comments and brackets are skipped so that the top-level commas and colons of one
`{…}` constructor are found. Each piece found is then compiled by jq on its own, so a scan that
cut in the wrong place is caught instead of trusted. Anything beyond one object constructor
(`def`s, pipes after it, computed keys) gives None: the keys are then known only per record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*")
_VARIABLE = re.compile(r"\$(?:__loc__|[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)")
# One step of a field path: `.name` or `."name"` (a plain string, no interpolation).
_FIELD_STEP = re.compile(r'\s*\.\s*(?:([A-Za-z_][A-Za-z0-9_]*)|("(?:[^"\\]|\\[^(])*"))')
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class ObjectQuery:
    """A query that is one object constructor: its keys in order, and for each key the field
    path it picks (`{k: .a.b}` gives ("a", "b"); `{a}` gives ("a",)), or None when the value is
    anything else."""

    keys: tuple[str, ...]
    paths: tuple[tuple[str, ...] | None, ...]

    @property
    def only_picks_fields(self) -> bool:
        return all(path is not None for path in self.paths)


def jq_compiles(program: str) -> bool:
    """Whether the real jq compiles `program`."""
    import jq

    try:
        jq.compile(program)
    except ValueError:
        return False
    return True


def read_object_query(
    query: str, compiles: Callable[[str], bool] = jq_compiles
) -> ObjectQuery | None:
    """The keys and paths of `query` if it is one `{…}` with literal keys, else None.

    `compiles(text)` says whether jq compiles a program: each key and value found must, or the
    scan is not trusted and None is returned.
    """
    text = _strip_comments(query).strip()
    if not text.startswith("{"):
        return None
    end = _matching(text, 0)
    if end != len(text) - 1:
        return None
    entries = _split_top_level(text[1:-1], ",")
    if entries is None or not entries or not all(entry.strip() for entry in entries):
        return None
    keys: list[str] = []
    paths: list[tuple[str, ...] | None] = []
    for entry in entries:
        parts = _split_top_level(entry, ":", limit=1)
        if parts is None:
            return None
        key_text = parts[0].strip()
        value: tuple[str, ...] | None
        key = _literal_key(key_text)
        if key is None:
            return None
        if len(parts) == 1:
            # `{a}` and `{"a"}` pick .a; `{$a}` takes the variable.
            value = None if key_text.startswith("$") else (key,)
            if not compiles(f"{{{key_text}}}"):
                return None
        else:
            value_text = parts[1].strip()
            if not value_text or not compiles(f"({value_text}\n)"):
                return None
            value = _field_path(value_text)
        keys.append(key)
        paths.append(value)
    return ObjectQuery(tuple(keys), tuple(paths))


def _literal_key(text: str) -> str | None:
    """The key an object entry's key text names, or None when it is computed or unknown."""
    if _IDENT.fullmatch(text) and "::" not in text:
        return text
    if _VARIABLE.fullmatch(text):
        return text[1:]
    if text.startswith('"') and _string_end(text, 0) == len(text) - 1:
        return _plain_string(text)
    return None


def _plain_string(text: str) -> str | None:
    """A jq string literal without interpolation, decoded (jq's escapes are JSON's)."""
    if "\\(" in text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _field_path(text: str) -> tuple[str, ...] | None:
    """("a", "b") for `.a.b` or `."a"."b"`, None for any other expression."""
    steps: list[str] = []
    at = 0
    while at < len(text):
        match = _FIELD_STEP.match(text, at)
        if match is None:
            return None
        name = match.group(1) or _plain_string(match.group(2))
        if name is None:
            return None
        steps.append(name)
        at = match.end()
    return tuple(steps) or None


def _strip_comments(text: str) -> str:
    """`text` with `# …` comments outside strings removed (each ends at its line's end)."""
    out: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char == '"':
            end = _string_end(text, at)
            if end < 0:
                return text  # unterminated: leave it to jq to refuse
            out.append(text[at : end + 1])
            at = end + 1
        elif char == "#":
            newline = text.find("\n", at)
            at = len(text) if newline < 0 else newline
        else:
            out.append(char)
            at += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index of the quote closing the string opened at `start`, or -1. Interpolations
    `\\(…)` may hold strings and brackets of their own."""
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == "\\":
            if text.startswith("\\(", at):
                close = _matching(text, at + 1)
                if close < 0:
                    return -1
                at = close + 1
                continue
            at += 2
            continue
        if char == '"':
            return at
        at += 1
    return -1


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start`, skipping strings; -1 if none."""
    stack = [_OPEN[text[start]]]
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == '"':
            end = _string_end(text, at)
            if end < 0:
                return -1
            at = end + 1
            continue
        if char in _OPEN:
            stack.append(_OPEN[char])
        elif char in ")]}":
            if char != stack.pop():
                return -1
            if not stack:
                return at
        at += 1
    return -1


def _split_top_level(text: str, separator: str, limit: int = -1) -> list[str] | None:
    """`text` split at `separator` outside brackets, strings and `if … end`; None if the
    brackets do not match. `::` (a module path) is not a `:` separator."""
    parts: list[str] = []
    depth_start = 0
    at = 0
    keyword_depth = 0
    while at < len(text):
        char = text[at]
        if char == '"':
            end = _string_end(text, at)
            if end < 0:
                return None
            at = end + 1
            continue
        if char in _OPEN:
            close = _matching(text, at)
            if close < 0:
                return None
            at = close + 1
            continue
        if char in ")]}":
            return None
        word = _IDENT.match(text, at) if (char.isalpha() or char == "_") else None
        if word is not None and (at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_$.")):
            if word.group() == "if":
                keyword_depth += 1
            elif word.group() == "end" and keyword_depth:
                keyword_depth -= 1
            at = word.end()
            continue
        if char == separator and keyword_depth == 0 and limit != 0:
            if separator == ":" and text.startswith("::", at):
                at += 2
                continue
            parts.append(text[depth_start:at])
            depth_start = at + 1
            limit -= 1
        at += 1
    parts.append(text[depth_start:])
    return parts
