"""Many records per jq call give each record the keys, or the error, it gets on its own."""

from __future__ import annotations

import random

import pytest

from transforms import jq_batch
from transforms.jq_batch import BatchedQuery
from transforms.metadata_extraction import MetadataExtraction

GOOD = b'{"site": "a", "n": 1, "list": [{"site": "x"}, {"site": "y"}]}'
# Records that must not borrow from, or lend to, their neighbours once joined.
TRICKY = [
    GOOD,
    b"",  # no JSON text at all
    b"  \n ",
    b'{"site": "two"} {"site": "texts"}',  # two texts in one record
    b'{"site":',  # half a text, whose other half follows
    b'"joined"}',
    b"[",
    b'{"site": "b"}]',
    b'{"site": "c"}\n',
    b"not json",
    b'{"site": "\xff"}',  # not UTF-8
    b'{"site": "\\ud800"}',  # a lone surrogate, which jq replaces
    b'{"site": "nul\\u0000"}',
    b'{"site": NaN}',  # jq reads NaN, orjson does not
    b'{"site": 1.50, "n": -0}',
    b'{"site": true}',
    b'{"site": null}',
    b"42",
    b'"a string"',
    b"[1, 2]",
    b"\xef\xbb\xbf" + GOOD,  # a byte order mark
]
QUERIES = [
    "{site: (.site)}",
    "{site: .site}",  # the fast path first
    "{n: (.n)}",  # numbers: rendered by the whole program
    ".list[] | {site: .site}",  # two results
    'select(.site == "a") | {site: .site}',  # none for most
    'if .site == "b" then halt else {site: (.site)} end',
    'if .site == "c" then error("no c") else {site: (.site)} end',
    "{site: (.site | ascii_upcase)}",
    "{site: (.site)} # a comment",
]


def alone(extraction: MetadataExtraction, data: bytes) -> dict[str, str] | str:
    try:
        return extraction.keys(data)
    except ValueError as exc:
        return str(exc)


def batched(extraction: MetadataExtraction, records: list[bytes]) -> list[dict[str, str] | str]:
    return [
        result if isinstance(result, dict) else str(result)
        for result in extraction.keys_of(records)
    ]


@pytest.mark.parametrize("query", QUERIES)
def test_each_record_gets_what_it_gets_alone(query: str) -> None:
    extraction = MetadataExtraction(query)
    expected = [alone(extraction, data) for data in TRICKY]
    assert batched(extraction, TRICKY) == expected
    assert batched(extraction, TRICKY[::-1]) == expected[::-1]
    # Failures both sides of every good record, in every order.
    shuffled = TRICKY * 3
    random.Random(7).shuffle(shuffled)
    assert batched(extraction, shuffled) == [alone(extraction, data) for data in shuffled]


def test_records_across_many_calls_keep_their_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jq_batch, "CHUNK", 16)  # many calls, stops at every place in one
    extraction = MetadataExtraction('if .site == "c" then error("no c") else {site: (.site)} end')
    rng = random.Random(11)
    records = [
        b'{"site": "%s"}' % rng.choice([b"a", b"b", b"c", b"d", b'c", "x": 1']) for _ in range(700)
    ]
    records[::37] = [b"not json"] * len(records[::37])
    assert batched(extraction, records) == [alone(extraction, data) for data in records]


def test_a_stop_costs_only_the_record_that_stopped() -> None:
    """The records after an error still get their outputs from the call, not alone."""
    query = BatchedQuery('if .n == 2 then error("two") else .n end')
    records = [b'{"n": %d}' % n for n in range(5)]
    assert query.outputs(records) == [[0], [1], None, [3], [4]]


def test_records_that_are_not_one_json_text_are_left_to_jq_alone() -> None:
    query = BatchedQuery(".")
    records = [b"1", b"2 3", b"", b"[", b"4]", b'"x"']
    assert query.outputs(records) == [[1], None, None, None, None, ["x"]]


def test_each_record_gives_all_its_outputs() -> None:
    query = BatchedQuery(".[]")
    assert query.outputs([b"[1, 2]", b"[]", b"[3]"]) == [[1, 2], [], [3]]
