"""A batch of JSON records into one Arrow table, and the records that do not fit.

The whole batch first goes through Arrow's own JSON reader (C++, no Python per record) with a
reader schema built from the columns. Whatever that way cannot vouch for gives the same answer
as `values` or is refused: a record that is not `{…}` (then a newline), a key spelled in another
case, a value the reader will not take. The batch is then halved until the halves that fail are
small, and only those go record by record through `values`, which names the records that fail.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from firehose.formats.hive_types import INTEGER_RANGES, HiveType
from firehose.formats.timestamps import TimestampError, timestamp_column
from firehose.formats.values import JsonRules, RowReader, ValueProblem

# The error codes of a record that fails: not JSON at all, or JSON that does not fit.
PARSE_ERROR = "DataFormatConversion.ParseError"
MALFORMED_DATA = "DataFormatConversion.MalformedData"
# Below this many records a failing part goes record by record instead of being halved.
_SMALL = 256
_MIN_BLOCK = 1 << 20
_OPEN, _CLOSE, _NEWLINE = b"{}\n"
# A timestamp column's reader type, tried in this order: text, whole numbers (epoch seconds or
# milliseconds), or whatever the reader infers (fractional numbers). Inference is the last
# resort: a column the reader must infer costs it about a tenth more.
_TIMESTAMP_WAYS: dict[str, pa.DataType | None] = {
    "text": pa.string(),
    "whole": pa.int64(),
    "inferred": None,
}
_NOT_INT64 = "Failed to convert JSON to int64"
_EXACT_LEAVES = {"string", "boolean", "float", "double", "binary", *INTEGER_RANGES}

Records = Sequence[bytes | memoryview]
Segment = tuple[bytes | memoryview, Sequence[int]]  # records back to back, and their lengths


@dataclass(frozen=True)
class RecordFailure:
    """Record `index` of the batch could not be converted: why, in Firehose's terms."""

    index: int
    code: str
    message: str


class _Miss(Exception):
    """The fast way cannot vouch for this part of the batch."""


def _nested_exact(kind: HiveType) -> bool:
    if kind.name in ("array", "struct"):
        return all(_nested_exact(child) for child in kind.children)
    return kind.name in _EXACT_LEAVES


class _FastReader:
    """Arrow's JSON reader, and the checks and casts that make its answer `values`'."""

    def __init__(self, columns: list[tuple[str, HiveType]], rules: JsonRules) -> None:
        self.columns = columns
        self.rules = rules
        self.keys = [rules.column_keys.get(name, name) for name, _ in columns]
        self.compared = {rules.key(key) for key in self.keys}
        self.timestamp_keys = [
            key for key, (_, kind) in zip(self.keys, columns, strict=True)
            if kind.name == "timestamp"
        ]  # fmt: skip
        # How timestamp columns are read: the way that last worked goes first.
        self.timestamp_way = "text"
        self.schema = pa.schema([pa.field(name, kind.arrow) for name, kind in columns])

    @staticmethod
    def eligible(columns: list[tuple[str, HiveType]], rules: JsonRules) -> bool:
        """Whether every column has a reader type whose answers the checks can vouch for."""
        for _, kind in columns:
            if kind.name in ("array", "struct") and not _nested_exact(kind):
                return False
            if kind.name == "map" or (not rules.openx and kind.name == "decimal"):
                return False
            if kind.name == "timestamp" and rules.timestamp_formats:
                return False
        return True

    def _reader_type(self, kind: HiveType) -> pa.DataType | None:
        if kind.name in ("varchar", "char", "date"):
            return pa.string()
        if kind.name == "decimal":
            return pa.decimal128(38, kind.args[1])  # the precision is checked by a cast
        if kind.name == "timestamp":
            return _TIMESTAMP_WAYS[self.timestamp_way]
        return kind.arrow

    def read(self, joined: pa.Buffer, count: int, longest: int) -> pa.Table:
        try:
            return self._read(joined, count, longest)
        except _Miss:
            raise
        except (pa.ArrowException, ValueError) as exc:
            if not self._timestamps_may_be_why(exc):
                raise _Miss(str(exc)) from None
            failure = str(exc)
        tried = self.timestamp_way
        for way in _TIMESTAMP_WAYS:
            if way == tried:
                continue
            self.timestamp_way = way
            try:
                return self._read(joined, count, longest)
            except (pa.ArrowException, ValueError) as exc:
                failure = str(exc)
        self.timestamp_way = tried
        raise _Miss(failure)

    def _timestamps_may_be_why(self, exc: Exception) -> bool:
        """Whether a failed read may pass with timestamps read another way: the reader names
        the column, except when a number does not fit the integer it was told to expect; or
        the column read is not one of timestamps (text the reader took for its own type)."""
        if not self.timestamp_keys:
            return False
        message = str(exc)
        if isinstance(exc, TimestampError):
            return True
        if any(f"Column(/{key})" in message for key in self.timestamp_keys):
            return True
        return self.timestamp_way == "whole" and message.startswith(_NOT_INT64)

    def _read(self, joined: pa.Buffer, count: int, longest: int) -> pa.Table:
        fields = []
        for key, (_, kind) in zip(self.keys, self.columns, strict=True):
            reader_type = self._reader_type(kind)
            if reader_type is not None:
                fields.append(pa.field(key, reader_type))
        table = pj.read_json(
            pa.BufferReader(joined),
            # One thread: the service's other work keeps the cores busy, and Arrow's parallel
            # parse spends more CPU in all for the same table.
            read_options=pj.ReadOptions(use_threads=False, block_size=max(_MIN_BLOCK, 2 * longest)),
            parse_options=pj.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="infer"
            ),
        )
        if table.num_rows != count:
            raise _Miss("a record is not exactly one JSON object")
        known = set(self.keys)
        for name in table.column_names:
            if name not in known and self.rules.key(name) in self.compared:
                raise _Miss(f"key {name!r} is spelled unlike its column")
        arrays = []
        for key, (_, kind) in zip(self.keys, self.columns, strict=True):
            if key in table.column_names:
                values = table.column(key)
                arrays.append(self._finish(values, kind))
            else:
                arrays.append(pa.nulls(count, kind.arrow))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _finish(self, values: pa.Array, kind: HiveType) -> pa.Array:
        if kind.name == "varchar":
            return pc.utf8_slice_codeunits(values, 0, kind.args[0])
        if kind.name == "char":
            return pc.utf8_rpad(pc.utf8_slice_codeunits(values, 0, kind.args[0]), kind.args[0])
        if kind.name == "date":
            if pc.any(pc.invert(pc.match_substring_regex(values, r"^\d{4}-\d{2}-\d{2}$"))).as_py():
                raise _Miss("a date in another form")
            return values.cast(pa.date32())
        if kind.name == "decimal":
            return values.cast(kind.arrow)  # raises when a value has too many digits
        if kind.name == "timestamp":
            return timestamp_column(values, openx=self.rules.openx)
        if values.type != kind.arrow:
            raise _Miss(f"the reader gave {values.type} for {kind}")
        return values


class JsonToArrow:
    """Reads batches of JSON records into tables of `columns`, naming the records that fail."""

    def __init__(self, columns: list[tuple[str, HiveType]], rules: JsonRules) -> None:
        self.schema = pa.schema([pa.field(name, kind.arrow) for name, kind in columns])
        self.rows = RowReader(columns, rules)
        eligible = _FastReader.eligible(columns, rules)
        self.fast = _FastReader(columns, rules) if eligible else None

    def read(
        self, segments: Sequence[Segment], first_index: int = 0, scratch: Scratch | None = None
    ) -> tuple[pa.Table, list[RecordFailure]]:
        """The rows of every record that converts, in order, and the failures (indexes from
        `first_index`)."""
        lines = _as_lines(segments, scratch)
        if self.fast is not None and lines is not None:
            try:
                return self.fast.read(*lines), []
            except _Miss:
                pass
        records = [
            data[start:end]
            for data, lengths in segments
            for start, end in _bounds(lengths)
        ]  # fmt: skip
        parts: list[tuple[int, pa.Table]] = []
        failures: list[RecordFailure] = []
        self._narrow(records, 0, len(records), parts, failures, first_index)
        parts.sort(key=lambda part: part[0])
        failures.sort(key=lambda failure: failure.index)
        tables = [table for _, table in parts if table.num_rows]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        return table, failures

    def _narrow(
        self,
        records: Records,
        lo: int,
        hi: int,
        parts: list[tuple[int, pa.Table]],
        failures: list[RecordFailure],
        first_index: int,
    ) -> None:
        """Halve [lo, hi) while exactly one half fails: a few bad records cost two passes
        over the batch; when both halves fail the cause is everywhere, so go per record."""
        if hi - lo <= _SMALL or self.fast is None:
            parts.append((lo, self._per_record(records, lo, hi, failures, first_index)))
            return
        mid = (lo + hi) // 2
        missed = []
        for start, stop in ((lo, mid), (mid, hi)):
            table = self._try_fast(records[start:stop])
            if table is None:
                missed.append((start, stop))
            else:
                parts.append((start, table))
        if len(missed) == 2:
            for start, stop in missed:
                parts.append((start, self._per_record(records, start, stop, failures, first_index)))
        elif missed:
            self._narrow(records, *missed[0], parts, failures, first_index)

    def _try_fast(self, records: Records) -> pa.Table | None:
        assert self.fast is not None
        lines = _as_lines([(record, [len(record)]) for record in records])
        if lines is None:
            return None
        try:
            return self.fast.read(*lines)
        except _Miss:
            return None

    def _per_record(
        self,
        records: Records,
        lo: int,
        hi: int,
        failures: list[RecordFailure],
        first_index: int,
    ) -> pa.Table:
        columns: list[list[object]] = [[] for _ in self.schema]
        row = self.rows.row
        for index in range(lo, hi):
            try:
                values = row(orjson.loads(records[index]))
            except orjson.JSONDecodeError as exc:
                failures.append(RecordFailure(first_index + index, PARSE_ERROR, str(exc)))
                continue
            except ValueProblem as exc:
                failures.append(RecordFailure(first_index + index, MALFORMED_DATA, str(exc)))
                continue
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        arrays = [
            pa.array(column, type=field.type)
            for column, field in zip(columns, self.schema, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _bounds(lengths: Sequence[int]) -> list[tuple[int, int]]:
    ends = list(accumulate(lengths, initial=0))
    return list(pairwise(ends))


def _as_lines(
    segments: Sequence[Segment], scratch: Scratch | None = None
) -> tuple[pa.Buffer, int, int] | None:
    """The records as lines for Arrow's reader, their count and the longest; None when the
    reader's rows could not be vouched to be the records one for one.

    Each record must start with `{` and end with `}`, then a newline in all of them or in none
    (each gets one then). An object still open at a record's closing `}` expects `,` or a
    closing bracket, never the `{` the next record starts with (and a `}` in a string cannot
    end a record: strings hold no raw newline), so no row spans two records; and every record
    yields a row. A reader that returns as many rows as records thus returned one per record.
    The checks read two or three bytes of each record with Arrow's kernels, no Python per
    record and no scan of every byte.
    """
    lengths = array("I")
    for _, some in segments:
        lengths.extend(some)
    if not lengths:
        return None
    # The lengths as an Arrow array without a copy: min, max and sums in Arrow's kernels, not
    # in Python over a list of ints.
    sizes = pa.Array.from_buffers(pa.uint32(), len(lengths), [None, pa.py_buffer(lengths)])
    extremes = pc.min_max(sizes)
    if extremes["min"].as_py() < 2:  # the shortest record that passes is `{}`
        return None
    longest = extremes["max"].as_py()
    joined = _joined(segments, scratch)
    octets = pa.Array.from_buffers(pa.uint8(), joined.size, [None, joined])
    sizes = sizes.cast(pa.int64())
    ends = pc.cumulative_sum(sizes)

    def every(offsets: pa.Array, octet: int) -> bool:
        return bool(pc.all(pc.equal(pc.take(octets, offsets), octet)).as_py())

    if not every(pc.subtract(ends, sizes), _OPEN):
        return None
    last = pc.subtract(ends, 1)
    if every(last, _NEWLINE):
        if not every(pc.subtract(ends, 2), _CLOSE):
            return None
    elif every(last, _CLOSE):
        joined = _with_newlines(joined, ends)
    else:
        return None
    return joined, len(lengths), longest


class Scratch:
    """One buffer that the slices of a batch are joined into in turn. A new buffer for each
    slice would come from pages the allocator handed back after the last slice, which the
    kernel zeroes again on first touch. The reader's tables copy what they keep, so a slice's
    table outlives the buffer's next use."""

    def __init__(self) -> None:
        self._buffer: pa.Buffer | None = None

    def take(self, size: int) -> pa.Buffer:
        """A buffer of at least `size` bytes, overwriting what the last one held."""
        if self._buffer is None or self._buffer.size < size:
            self._buffer = pa.allocate_buffer(size)
        return self._buffer


def _joined(segments: Sequence[Segment], scratch: Scratch | None = None) -> pa.Buffer:
    """The segments back to back in a buffer of Arrow's pool, which the reader reads in place;
    measured a little cheaper than joining them into bytes (about 0.2 µs a record)."""
    if len(segments) == 1:
        return pa.py_buffer(segments[0][0])  # no copy
    size = sum(len(data) for data, _ in segments)
    whole = scratch.take(size) if scratch is not None else pa.allocate_buffer(size)
    joined = whole.slice(0, size)
    into = memoryview(whole).cast("B")
    offset = 0
    for data, _ in segments:
        into[offset : offset + len(data)] = data
        offset += len(data)
    return joined


def _with_newlines(joined: pa.Buffer, ends: pa.Array) -> pa.Buffer:
    """Each record of `joined` (the one ending at each of `ends`) followed by a newline: one
    Arrow kernel over the records, no Python per record."""
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), ends])
    records = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, offsets.buffers()[1], joined]
    )
    nothing, newline = (pa.scalar(text, pa.large_binary()) for text in (b"", b"\n"))
    lines = pc.binary_join_element_wise(records, nothing, newline)
    return lines.buffers()[2].slice(0, ends[-1].as_py() + len(ends))
