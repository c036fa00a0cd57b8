"""JSON values into declared column types, by the OpenX and Hive rules: every value checked,
through the batch reader's fast way and record by record, which must agree."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pytest

from firehose.formats.hive_types import HiveTypeError, parse_hive_type
from firehose.formats.joda import compile_format
from firehose.formats.json_arrow import MALFORMED_DATA, PARSE_ERROR, JsonToArrow, Scratch
from firehose.formats.values import JsonRules

OPENX = JsonRules()
HIVE = JsonRules(openx=False)


def ns(text: str, fraction: int = 0) -> int:
    moment = datetime.fromisoformat(text) - datetime(1970, 1, 1)
    return (moment.days * 86_400 + moment.seconds) * 1_000_000_000 + fraction


def lines(*documents: Any) -> list[tuple[bytes, list[int]]]:
    records = [d if isinstance(d, bytes) else orjson.dumps(d) + b"\n" for d in documents]
    return [(b"".join(records), [len(record) for record in records])]


def as_python(table: pa.Table, column: str) -> list[Any]:
    values = table.column(column)
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    result: list[Any] = values.to_pylist()
    return result


def read_both(type_text: str, rules: JsonRules, documents: list[Any]) -> tuple[Any, Any]:
    """(rows and failures) read as a batch, and record by record."""
    reader = JsonToArrow([("c", parse_hive_type(type_text))], rules)
    table, failures = reader.read(lines(*documents))
    batch = (as_python(table, "c"), [f.index for f in failures])
    records = [r for data, lengths in lines(*documents) for r in _split(data, lengths)]
    slow_failures: list[Any] = []
    slow = reader._per_record(records, 0, len(records), slow_failures, 0)
    return batch, (as_python(slow, "c"), [f.index for f in slow_failures])


def _split(data: bytes, lengths: list[int]) -> list[bytes]:
    out, at = [], 0
    for length in lengths:
        out.append(data[at : at + length])
        at += length
    return out


CASES: list[tuple[str, JsonRules, Any, Any]] = [
    # type, rules, JSON value of column c, expected (or "FAIL")
    ("string", OPENX, "héllo", "héllo"),
    ("string", OPENX, 12, "12"),
    ("string", OPENX, True, "true"),
    ("string", OPENX, {"a": [1, 2]}, '{"a":[1,2]}'),
    ("string", HIVE, {"a": 1}, "FAIL"),
    ("varchar(3)", OPENX, "abcdef", "abc"),
    ("char(4)", OPENX, "ab", "ab  "),
    ("boolean", OPENX, True, True),
    ("boolean", OPENX, "false", False),
    ("boolean", HIVE, "false", "FAIL"),
    ("tinyint", OPENX, 127, 127),
    ("tinyint", OPENX, 128, "FAIL"),
    ("smallint", OPENX, -32768, -32768),
    ("int", OPENX, "42", 42),
    ("int", HIVE, "42", "FAIL"),
    ("int", OPENX, "forty", "FAIL"),
    ("int", OPENX, 1.5, "FAIL"),
    ("bigint", OPENX, 2**63 - 1, 2**63 - 1),
    ("float", OPENX, 1.5, 1.5),
    ("double", OPENX, 1e300, 1e300),
    ("double", HIVE, "1.5", "FAIL"),
    ("decimal(5,2)", OPENX, 123.456, Decimal("123.46")),
    ("decimal(5,2)", OPENX, "-1.005", Decimal("-1.01")),
    ("decimal(5,2)", OPENX, 1000, "FAIL"),
    ("decimal(5,2)", OPENX, 999.99, Decimal("999.99")),
    ("decimal(38,0)", OPENX, "9" * 38, Decimal("9" * 38)),
    ("date", OPENX, "2024-02-29", date(2024, 2, 29)),
    ("date", OPENX, "2024-2-3", date(2024, 2, 3)),
    ("date", OPENX, "2023-02-29", "FAIL"),
    ("binary", OPENX, "abc", b"abc"),
    ("timestamp", OPENX, "2024-01-02T03:04:05Z", ns("2024-01-02T03:04:05")),
    ("timestamp", OPENX, "2024-01-02T03:04:05.5Z", ns("2024-01-02T03:04:05", 500_000_000)),
    (
        "timestamp",
        OPENX,
        "2024-01-02T03:04:05.123456789Z",
        ns("2024-01-02T03:04:05", 123_456_789),
    ),
    ("timestamp", OPENX, "2024-1-2 03:04:05", ns("2024-01-02T03:04:05")),
    ("timestamp", OPENX, "2024-01-02 03:04:05.25", ns("2024-01-02T03:04:05", 250_000_000)),
    ("timestamp", OPENX, 1704164645, ns("2024-01-02T03:04:05")),
    ("timestamp", OPENX, 1704164645123, ns("2024-01-02T03:04:05", 123_000_000)),
    ("timestamp", OPENX, 1704164645.25, ns("2024-01-02T03:04:05", 250_000_000)),
    ("timestamp", OPENX, "1704164645", ns("2024-01-02T03:04:05")),
    ("timestamp", OPENX, "2024-01-02T03:04:05", "FAIL"),
    ("timestamp", OPENX, "yesterday", "FAIL"),
    ("timestamp", HIVE, "2024-1-2 03:04:05.5", ns("2024-01-02T03:04:05", 500_000_000)),
    ("timestamp", HIVE, "2024-01-02T03:04:05Z", "FAIL"),
    ("timestamp", HIVE, 1704164645, "FAIL"),
    ("array<int>", OPENX, [1, None, 3], [1, None, 3]),
    ("array<array<string>>", OPENX, [["a"], []], [["a"], []]),
    ("map<string,int>", OPENX, {"a": 1, "b": "2"}, [("a", 1), ("b", 2)]),
    ("map<int,boolean>", OPENX, {"7": True}, [(7, True)]),
    (
        "struct<a:int,b:struct<c:array<decimal(4,1)>>>",
        OPENX,
        {"A": 1, "b": {"C": [1.25]}, "junk": 0},
        {"a": 1, "b": {"c": [Decimal("1.3")]}},
    ),
    ("struct<a:timestamp>", OPENX, {"a": 1704164645}, {"a": datetime(2024, 1, 2, 3, 4, 5)}),
    ("struct<a:int>", OPENX, [1], "FAIL"),
    ("array<int>", OPENX, "1,2", "FAIL"),
]


@pytest.mark.parametrize(("kind", "rules", "value", "expected"), CASES)
def test_value(kind: str, rules: JsonRules, value: Any, expected: Any) -> None:
    batch, per_record = read_both(kind, rules, [{"c": value}])
    assert batch == per_record
    if expected == "FAIL":
        assert batch == ([], [0])
    else:
        assert batch == ([expected], [])


@pytest.mark.parametrize("kind", sorted({case[0] for case in CASES}))
def test_a_batch_gives_what_each_record_gives(kind: str) -> None:
    """All cases of one type in one batch: the good ones in order, the bad ones named."""
    for rules in (OPENX, HIVE):
        cases = [case for case in CASES if case[0] == kind and case[1] is rules]
        if not cases:
            continue
        documents = [{"c": value} for _, _, value, _ in cases] * 300  # big enough to halve
        batch, per_record = read_both(kind, rules, documents)
        assert batch == per_record
        expected = [e for _, _, _, e in cases] * 300
        assert batch[0] == [e for e in expected if e != "FAIL"]
        assert batch[1] == [i for i, e in enumerate(expected) if e == "FAIL"]


def test_keys_case_dots_and_mappings() -> None:
    columns = [(name, parse_hive_type("int")) for name in ("user_id", "a_b", "renamed")]
    rules = JsonRules(dots_to_underscores=True, column_keys={"renamed": "Original.Key"})
    reader = JsonToArrow(columns, rules)
    table, failures = reader.read(
        lines(
            {"USER_ID": 1, "a.b": 2, "Original.Key": 3, "other": "x"},
            {"user_id": 4},
            {"User_Id": 5, "original_key": 6},
        )
    )
    assert failures == []
    assert table.to_pylist() == [
        {"user_id": 1, "a_b": 2, "renamed": 3},
        {"user_id": 4, "a_b": None, "renamed": None},
        {"user_id": 5, "a_b": None, "renamed": 6},
    ]
    exact = JsonToArrow(columns, JsonRules(case_insensitive=False))
    table, _ = exact.read(lines({"USER_ID": 1, "user_id": 2}))
    assert table.column("user_id").to_pylist() == [2]


def test_records_that_are_not_one_json_object_fail_alone() -> None:
    reader = JsonToArrow([("a", parse_hive_type("int"))], OPENX)
    records = lines({"a": 1}, b"null\n", b"not json\n", b'{"a":2}{"a":3}\n', b"[1]\n", {"a": 4})
    # Records without a newline, and one spread over lines, are records too.
    records.append((b'{"a":5}{\n"a"\n:6}', [7, 10]))
    table, failures = reader.read(records)
    assert table.column("a").to_pylist() == [1, 4, 5, 6]
    assert [(f.index, f.code) for f in failures] == [
        (1, MALFORMED_DATA), (2, PARSE_ERROR), (3, PARSE_ERROR), (4, MALFORMED_DATA),
    ]  # fmt: skip


def test_records_that_only_line_up_together_are_read_one_by_one() -> None:
    """An object left open in one record and closed in the next, beside a record of two
    objects: as many rows as records, but not one per record, so each is read alone."""
    reader = JsonToArrow([("x", parse_hive_type("int"))], OPENX)
    records = [b'{"z":\n', b'{"b":1}}\n', b'{"x":1}{"x":2}\n', b'{"x":3}\n']
    table, failures = reader.read([(b"".join(records), [len(r) for r in records])])
    assert table.column("x").to_pylist() == [3]
    assert [(f.index, f.code) for f in failures] == [
        (0, PARSE_ERROR),
        (1, PARSE_ERROR),
        (2, PARSE_ERROR),
    ]


@pytest.mark.parametrize(
    "record", [b'{"a":%d}', b'{"a":%d}\n', b'{\n  "a": %d\n}\n'], ids=["bare", "line", "pretty"]
)
def test_whole_objects_are_read_by_arrow_alone(
    record: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records that are each one object, with or without a newline or spread over lines, take
    Arrow's reader for the whole batch: no record goes the slow way."""
    reader = JsonToArrow([("a", parse_hive_type("int"))], OPENX)

    def refuse(*args: Any) -> pa.Table:
        raise AssertionError("a record was read the slow way")

    monkeypatch.setattr(reader, "_per_record", refuse)
    records = [record % index for index in range(1000)]
    table, failures = reader.read([(b"".join(records), [len(r) for r in records])])
    assert failures == []
    assert table.column("a").to_pylist() == list(range(1000))


def test_a_table_outlives_the_scratch_its_slice_was_joined_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slices are joined into one reused buffer, and Parquet holds a slice's table while the
    next is read: every type Arrow's reader reads must be copied out of that buffer."""
    kinds = [
        ("s", "string"), ("v", "varchar(8)"), ("i", "bigint"), ("f", "double"), ("b", "boolean"),
        ("t", "timestamp"), ("d", "decimal(10,2)"), ("day", "date"), ("a", "array<string>"),
        ("st", "struct<k:string,n:int>"), ("bin", "binary"),
    ]  # fmt: skip
    reader = JsonToArrow([(name, parse_hive_type(kind)) for name, kind in kinds], OPENX)

    def refuse(*args: Any) -> pa.Table:
        raise AssertionError("a record was read the slow way")

    monkeypatch.setattr(reader, "_per_record", refuse)

    def documents(tag: str) -> list[dict[str, Any]]:
        return [
            {"s": f"{tag}é{n}", "v": f"{tag}{n}", "i": n, "f": n / 3, "b": n % 2 == 0,
             "t": f"2024-01-02 03:04:{n % 60:02d}", "d": n / 4, "day": "2024-01-02",
             "a": [tag, str(n)], "st": {"k": tag * 3, "n": n}, "bin": "aGVsbG8="}
            for n in range(500)
        ]  # fmt: skip

    def segments(tag: str) -> list[tuple[bytes, list[int]]]:
        # Two segments, so that the slice is joined into the scratch buffer, not read in place.
        docs = documents(tag)
        return lines(*docs[:250]) + lines(*docs[250:])

    scratch = Scratch()
    first, failures = reader.read(segments("a"), 0, scratch)
    assert failures == []
    expected = first.to_pylist()
    second, _ = reader.read(segments("z"), 0, scratch)  # the same bytes, other values
    assert first.to_pylist() == expected
    assert second.to_pylist() != expected
    assert [row["s"] for row in expected] == [f"aé{n}" for n in range(500)]


def test_timestamps_of_each_form_take_arrow_alone_batch_after_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One reader meets batches of text, whole and fractional epoch timestamps in turn, each
    read by Arrow alone with the values record by record gives; a batch of several segments
    reads as the same batch in one piece."""
    reader = JsonToArrow(
        [("ts", parse_hive_type("timestamp")), ("n", parse_hive_type("bigint"))], OPENX
    )
    forms: list[list[Any]] = [
        ["2026-01-01 10:00:00.5", "2026-01-02T00:00:01Z"],
        [1_767_225_600_000, 1_767_225_600],
        [1_767_225_600.25, 1.5],
        ["2026-01-03 00:00:00", None],
        [1_767_225_600_001, None],
    ]
    expected = []
    for values in forms:
        documents = [{"ts": value, "n": index} for index, value in enumerate(values)]
        expected.append(read_both("timestamp", OPENX, [{"c": value} for value in values])[1])
        monkeypatch.setattr(reader, "_per_record", _refuse)
        records = [orjson.dumps(document) + b"\n" for document in documents]
        segments = [(memoryview(record), [len(record)]) for record in records]
        table, failures = reader.read(segments)
        monkeypatch.undo()
        assert failures == []
        assert (as_python(table, "ts"), []) == expected[-1]
        assert table.column("n").to_pylist() == list(range(len(values)))


def _refuse(*args: Any) -> pa.Table:
    raise AssertionError("a record was read the slow way")


def test_hive_timestamp_formats() -> None:
    rules = JsonRules(
        openx=False,
        timestamp_formats=(compile_format("dd/MM/yyyy HH:mm:ss.SSSZ"), compile_format("millis")),
    )
    reader = JsonToArrow([("t", parse_hive_type("timestamp"))], rules)
    table, failures = reader.read(
        lines({"t": "02/01/2024 04:04:05.123+0100"}, {"t": 1704164645123}, {"t": "nope"})
    )
    assert as_python(table, "t") == [ns("2024-01-02T03:04:05", 123_000_000)] * 2
    assert [f.index for f in failures] == [2]


@pytest.mark.parametrize("text", ["int<", "foo", "map<array<int>,int>", "decimal(40,2)",
                                  "struct<a:int b:int>", "uniontype<int,string>"])  # fmt: skip
def test_bad_types_are_refused(text: str) -> None:
    with pytest.raises(HiveTypeError):
        parse_hive_type(text)


def test_type_strings_round_trip() -> None:
    text = "array<struct<a:int,b:map<string,decimal(5,2)>,c:varchar(3),d:timestamp>>"
    parsed = parse_hive_type(text)
    assert str(parsed) == text
    assert parsed.arrow == pa.list_(
        pa.struct(
            [
                ("a", pa.int32()),
                ("b", pa.map_(pa.string(), pa.decimal128(5, 2))),
                ("c", pa.string()),
                ("d", pa.timestamp("ns")),
            ]
        )
    )
