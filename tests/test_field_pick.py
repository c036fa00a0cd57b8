"""The MetadataExtraction fast path gives exactly jq's keys, or leaves the record to jq."""

from __future__ import annotations

import random
import struct

import pytest

from transforms.field_pick import jq_number
from transforms.metadata_extraction import MetadataExtraction

QUERY = '{v: .v, n: .a.b, "s p": ."x y"}'
NUMBERS = [
    "0", "-0", "1", "-1", "1.0", "-1.5", "0.1", "3.0e2", "1e17", "1e16", "1e15", "1E-4",
    "1e-5", "0.00012345", "1.5e300", "2e-300", "5e-324", "1.7976931348623157e308",
    "9007199254740993", "12345678901234567890", "123456789012345678901234", "18446744073709551615",
    "-9223372036854775808", "1234567.125", "100", "0.30000000000000004", "2.5e-7", "1e400",
    "123e-2", "0e10", "-0.0",
]  # fmt: skip
OTHERS = [
    "true", "false", "null", '"plain"', '""', '"é ü 漢字 🎉"', '"\\u00e9\\ud83c\\udf89"',
    '"\\ud800"', '"a\\nb\\t\\"q\\"\\\\"', "[1]", '{"o": 1}', '"1e5"',
]  # fmt: skip


def documents() -> list[bytes]:
    values = NUMBERS + OTHERS
    docs = [f'{{"v": {v}, "a": {{"b": {v}}}, "x y": {v}}}'.encode() for v in values]
    docs += [
        b'{"a": {"b": "x"}, "x y": "y"}',  # v missing
        b'{"v": 1, "a": null, "x y": 2}',  # .a.b on null
        b'{"v": 1, "a": "str", "x y": 2}',  # .a.b on a string: a jq error
        b'{"v": 1, "a": [1], "x y": 2}',
        b'{"v": 1, "v": "twice", "a": {"b": 1}, "x y": 2}',
        b'{"v": 1, "a": {"b": 1}, "x y": 2} {"v": 2}',
        b'{"v": 1, "a": {"b": 1}, "x y": 2}\n',
        b'[{"v": 1}]',
        b"not json",
        b'{"v": NaN, "a": {"b": 1}, "x y": 2}',
        b'{"v": "\xff", "a": {"b": 1}, "x y": 2}',
        b'{"v": 1, "a": {"b": 1}, "x y": 2',
    ]
    rng = random.Random(7)
    for _ in range(2000):
        number = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if number == number and abs(number) != float("inf"):
            text = repr(number) if rng.random() < 0.5 else f"{number:.{rng.randrange(1, 20)}g}"
            docs.append(f'{{"v": {text}, "a": {{"b": {rng.randrange(-10**6, 10**6)}}}, '
                        f'"x y": {rng.uniform(-1e3, 1e3)}}}'.encode())  # fmt: skip
    return docs


def outcome(extraction: MetadataExtraction, data: bytes, fast: bool) -> object:
    try:
        return extraction.keys(data) if fast else extraction.jq_keys(data)
    except ValueError as exc:
        return f"error: {exc}"


def test_the_query_takes_the_fast_path() -> None:
    assert MetadataExtraction(QUERY).picker is not None
    assert MetadataExtraction("{v: .v | tostring}").picker is None


def test_fast_path_and_jq_agree() -> None:
    extraction = MetadataExtraction(QUERY)
    differ = [
        (data, fast, slow)
        for data in documents()
        if (fast := outcome(extraction, data, fast=True))
        != (slow := outcome(extraction, data, fast=False))
    ]
    assert differ == []


def test_the_fast_path_answers_the_common_records_itself() -> None:
    extraction = MetadataExtraction(QUERY)
    assert extraction.picker is not None
    answered = [data for data in documents() if extraction.picker.keys(data) is not None]
    assert len(answered) > 2000


@pytest.mark.parametrize(
    ("number", "text"),
    [(1.0, "1"), (-0.0, "-0"), (1e17, "1e+17"), (1e15, "1000000000000000"), (1e-5, "1e-05"),
     (0.0001, "0.0001"), (1.5e300, "1.5e+300"), (12345678901234567890.0, "12345678901234567000")],
)  # fmt: skip
def test_jq_number(number: float, text: str) -> None:
    assert jq_number(number) == text
