"""Dynamic partitioning: each record to the partition its prefix keys name, or to the error
output when it has no usable keys.

A partition is named by the values of the partition keys the `Prefix` uses, as sorted
(`namespace:key`, value) pairs, so records that differ only in keys the prefix does not use
share a buffer. The S3 destination evaluates the prefix of each batch with its partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from firehose.batch import PartitionKey
from firehose.buffer import PARTITIONING_FAILED
from firehose.destination import FailedRecord
from firehose.keys import (
    MAX_EVALUATED_PREFIX,
    PARTITION_KEY_FROM_QUERY,
    fixed_prefix_width,
    partition_name,
    prefix_partition_keys,
)
from transforms.processor import ProcessingRecord
from transforms.records import failure

OUTPUT_TYPE = PARTITIONING_FAILED
MISSING_KEY = "DynamicPartitioning.MetadataExtractionFailed"
INVALID_VALUE = "DynamicPartitioning.InvalidPartitionValue"
_UNSAFE = frozenset(chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))) | {"/"}


def value_problem(value: str) -> str | None:
    """Why a partition value cannot go in an object key, or None: it would add or climb a path
    level, or hold characters S3 tools and local folders handle badly."""
    if value in ("", ".", ".."):
        return f"the partition value {value!r} is not a usable path segment"
    bad = _UNSAFE.intersection(value)
    if bad:
        shown = ", ".join(repr(char) for char in sorted(bad))
        return f"the partition value {value[:80]!r} contains {shown}"
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """Why values name no partition, as the error record gives it."""

    error_code: str
    message: str


class PartitionRouter:
    """Names the partition of each record from the keys `Prefix` uses."""

    # Value combinations already checked, so that a record of a known partition costs one
    # lookup; bounded, as values may be unbounded.
    CACHE_SIZE = 8192

    def __init__(self, prefix: str) -> None:
        self._uses = [
            (namespace == PARTITION_KEY_FROM_QUERY, namespace, key)
            for namespace, key in prefix_partition_keys(prefix)
        ]
        # Each use of a key in the prefix adds its value's length to the evaluated prefix.
        self._counts = [_count_uses(prefix, namespace, key) for _, namespace, key in self._uses]
        self._room = MAX_EVALUATED_PREFIX - fixed_prefix_width(prefix)
        # Keyed by the value alone when the prefix uses one key (no tuple to build for each
        # record on the fast path), else by the tuple of values.
        self._known: dict[str | tuple[str | None, ...], tuple[tuple[str, str], ...]] = {}
        self._one = self._uses[0][2] if len(self._uses) == 1 and self._uses[0][0] else None

    @property
    def query_keys_only(self) -> bool:
        """Whether every key the prefix uses is a `partitionKeyFromQuery` key."""
        return all(query for query, _, _ in self._uses)

    def partition(self, record: ProcessingRecord) -> PartitionKey | FailedRecord:
        """The record's partition, or the error record saying why it has none."""
        if len(self._uses) == 1:  # the common case, without a generator per record
            query, _, key = self._uses[0]
            values: tuple[str | None, ...] = (
                _lookup(record.query_keys if query else record.lambda_keys, key),
            )
        else:
            values = tuple(
                _lookup(record.query_keys if query else record.lambda_keys, name)
                for query, _, name in self._uses
            )
        partition = self._of_values(values)
        if isinstance(partition, Problem):
            return failure(record, OUTPUT_TYPE, partition.error_code, partition.message)
        return partition

    def of_query_keys(self, keys: Mapping[str, str]) -> tuple[tuple[str, str], ...] | None:
        """The partition of a record with these query keys (the prefix uses no others), or None
        when it has none (`partition` then says why)."""
        if self._one is None:
            partition = self._of_values(tuple(_lookup(keys, name) for _, _, name in self._uses))
            return None if isinstance(partition, Problem) else partition
        value = _lookup(keys, self._one)
        if value is None:
            return None
        known = self._known.get(value)
        if known is not None:
            return known
        partition = self._of_values((value,))
        return None if isinstance(partition, Problem) else partition

    def _of_values(self, values: tuple[str | None, ...]) -> tuple[tuple[str, str], ...] | Problem:
        """The partition these values name (cached once checked), or why there is none."""
        cache_key = values[0] if len(values) == 1 and values[0] is not None else values
        known = self._known.get(cache_key)
        if known is not None:
            return known
        checked = self._check(values)
        if not isinstance(checked, Problem) and len(self._known) < self.CACHE_SIZE:
            self._known[cache_key] = checked
        return checked

    def _check(self, values: tuple[str | None, ...]) -> tuple[tuple[str, str], ...] | Problem:
        pairs: list[tuple[str, str]] = []
        length = 0
        for (_, namespace, key), value, count in zip(self._uses, values, self._counts, strict=True):
            if value is None:
                return Problem(
                    MISSING_KEY,
                    f"no value for !{{{namespace}:{key}}} among the record's partition keys",
                )
            problem = value_problem(value)
            if problem is not None:
                return Problem(INVALID_VALUE, problem)
            length += len(value) * count
            pairs.append((partition_name(namespace, key), value))
        if length > self._room:
            return Problem(
                INVALID_VALUE,
                f"the partition values make the prefix longer than {MAX_EVALUATED_PREFIX} "
                "characters",
            )
        pairs.sort()
        return tuple(pairs)


def _lookup(keys: Mapping[str, str] | None, key: str) -> str | None:
    if keys is None:
        return None
    value = keys.get(key)
    return value if isinstance(value, str) else None


def _count_uses(prefix: str, namespace: str, key: str) -> int:
    return prefix.count(f"!{{{namespace}:{key}}}")
