"""Reading a worker's answers from the handler's own value gives what reading its JSON gives.

Workers skip parsing the response's JSON when the handler returned plain data; every response
below is read both ways (the JSON way forced by hiding the value) and must answer alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pybase64
import pytest

from tests.handlers import powertools
from tests.lambda_helpers import STREAM_ARN
from transforms.lambda_contract import (
    EventShape,
    InvokeError,
    Segment,
    SegmentAnswer,
    _plain_answers,
    answer_segments,
    segment_event,
)
from transforms.lambda_handler import FunctionInfo, LambdaContext, run_handler

SHAPE = EventShape(STREAM_ARN, "us-east-1")
DATAS = [b'{"a":1}\n', b"two", b"", b"\xff\x00binary", b"x" * 300, b"last"]
# Two segments, as a read of two runs: ids 0-3 and 4-5.
SEGMENTS: list[Segment] = [
    (0, 1_700_000_000_000, [len(d) for d in DATAS[:4]], b"".join(DATAS[:4])),
    (4, 1_700_000_000_500, [len(d) for d in DATAS[4:]], b"".join(DATAS[4:])),
]
Entries = list[dict[str, Any]]


def ok(record: dict[str, Any], data: bytes | None = None) -> dict[str, Any]:
    encoded = record["data"] if data is None else pybase64.b64encode(data).decode()
    return {"recordId": record["recordId"], "result": "Ok", "data": encoded}


def with_entry(index: int, change: Callable[[dict[str, Any]], Any]) -> Callable[[Entries], Any]:
    def respond(records: Entries) -> Any:
        entries = [ok(r, pybase64.b64decode(r["data"]) + b"!") for r in records]
        entries[index] = change(entries[index])
        return {"records": entries}

    return respond


def replaced(**values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda entry: {**entry, **values}


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda entry: {k: v for k, v in entry.items() if k != key}


# (name, response built from the event's records, whether the value is read as it is)
RESPONSES: list[tuple[str, Callable[[Entries], Any], bool]] = [
    ("identity", lambda rs: {"records": [ok(r) for r in rs]}, True),
    (
        "changed data",
        lambda rs: {"records": [ok(r, b"<" + r["data"].encode() + b">") for r in rs]},
        True,
    ),
    ("dropped", with_entry(1, replaced(result="Dropped", data=None)), True),
    ("failed", with_entry(2, replaced(result="ProcessingFailed")), True),
    ("unknown result", with_entry(3, replaced(result="Bogus")), True),
    ("partition keys", with_entry(0, replaced(metadata={"partitionKeys": {"k": "v"}})), True),
    ("empty metadata", with_entry(5, replaced(metadata={})), True),
    ("null keys", with_entry(4, replaced(metadata={"partitionKeys": None})), True),
    ("number key", with_entry(0, replaced(metadata={"partitionKeys": {"k": 1}})), False),
    ("keys not an object", with_entry(0, replaced(metadata={"partitionKeys": ["k"]})), False),
    ("metadata not an object", with_entry(0, replaced(metadata="k")), False),
    ("bad base64", with_entry(1, replaced(data="not base64!")), False),
    ("data a number", with_entry(1, replaced(data=7)), False),
    ("no data", with_entry(1, without("data")), False),
    ("no result", with_entry(1, without("result")), False),
    ("result a number", with_entry(1, replaced(result=1)), False),
    ("numeric id", with_entry(2, replaced(recordId=2)), False),
    ("unknown id", with_entry(2, replaced(recordId="99")), False),
    ("duplicated id", with_entry(2, replaced(recordId="1")), False),
    ("entry not an object", with_entry(2, lambda entry: [entry]), False),
    ("missing record", lambda rs: {"records": [ok(r) for r in rs[:-1]]}, False),
    ("reversed", lambda rs: {"records": [ok(r) for r in reversed(rs)]}, False),
    ("records a tuple", lambda rs: {"records": tuple(ok(r) for r in rs)}, False),
    ("no records", lambda rs: {"recs": []}, False),
    ("a list", lambda rs: [ok(r) for r in rs], False),
]


def answered(value: Any, *, as_json: bool) -> list[SegmentAnswer] | InvokeError:
    """The answers to `value` read from the value itself, or (as_json) from its JSON only."""
    body = orjson.dumps(value)
    try:
        return answer_segments(
            SHAPE, "invocation", SEGMENTS, lambda event: (None if as_json else value, body)
        )
    except InvokeError as exc:
        return exc


@pytest.mark.parametrize(("name", "respond", "plain"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_the_value_and_its_json_answer_alike(
    name: str, respond: Callable[[Entries], Any], plain: bool
) -> None:
    event, _ = segment_event(SHAPE, "invocation", SEGMENTS)
    value = respond(event["records"])
    direct, parsed = answered(value, as_json=False), answered(value, as_json=True)
    if isinstance(parsed, InvokeError):
        assert isinstance(direct, InvokeError)
        assert (direct.code, direct.detail) == (parsed.code, parsed.detail)
    else:
        assert direct == parsed
    # The common shapes are read without parsing; the rest go through the JSON reader.
    assert (_plain_answers(value, SEGMENTS) is not None) == plain


def test_the_event_is_the_one_firehose_sends() -> None:
    event, record_ids = segment_event(SHAPE, "invocation", SEGMENTS)
    assert record_ids == [str(i) for i in range(len(DATAS))]
    assert event["invocationId"] == "invocation"
    assert event["deliveryStreamArn"] == STREAM_ARN
    assert [pybase64.b64decode(r["data"]) for r in event["records"]] == DATAS
    assert [r["approximateArrivalTimestamp"] for r in event["records"]] == [
        1_700_000_000_000
    ] * 4 + [1_700_000_000_500] * 2
    assert list(event["records"][0]) == ["recordId", "approximateArrivalTimestamp", "data"]


def test_identity_answers_every_record_ok_in_order() -> None:
    event, _ = segment_event(SHAPE, "invocation", SEGMENTS)
    answers = answered({"records": [ok(r) for r in event["records"]]}, as_json=False)
    assert answers == [
        ([len(d) for d in DATAS[:4]], b"".join(DATAS[:4]), {}),
        ([len(d) for d in DATAS[4:]], b"".join(DATAS[4:]), {}),
    ]


def test_a_powertools_response_object_is_read_as_its_dict() -> None:
    info = FunctionInfo.of("tests/handlers.py:powertools", STREAM_ARN, "us-east-1", 128)
    loop = asyncio.new_event_loop()
    texts = [b"one", b"drop", b"three"]
    segments: list[Segment] = [(0, 1_700_000_000_000, [len(t) for t in texts], b"".join(texts))]
    try:
        event, _ = segment_event(SHAPE, "invocation", segments)
        value, body = run_handler(powertools, event, LambdaContext(info, 10), loop)
    finally:
        loop.close()
    assert type(value) is dict
    assert orjson.loads(body) == value
    answers = _plain_answers(value, segments)
    assert answers is not None
    [(lengths, data, others)] = answers
    assert data == b""
    assert lengths == [-1, -1, -1]  # partition keys, or dropped
    assert others[0].data == b"eno" and others[0].partition_keys == {"len": "3"}
    assert others[1].result == "Dropped"
