"""The Lambda processor with Python callables: the contract, the error codes, the worker pool."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from firehose.destination import FailedRecord
from firehose.processing_config import ProcessorConfig
from tests.lambda_helpers import KINESIS_ARN, STREAM_ARN, context, processor, records
from transforms.lambda_contract import PAYLOAD_LIMIT, EventShape, PayloadInvoker
from transforms.lambda_handler import check_handler
from transforms.lambda_transform import LambdaProcessor
from transforms.processor import ProcessorOutput
from transforms.registry import PROCESSORS
from transforms.workers import WorkerPool

REPO = Path(__file__).resolve().parent.parent
MODES = ["process", "thread", "inline"]


async def run(
    spec: str, *datas: bytes, mode: str = "process", **parameters: Any
) -> ProcessorOutput:
    ctx = context(mode, timeout=parameters.pop("timeout", 10.0))
    lam = processor(spec, ctx, **parameters)
    try:
        return await lam.process(records(*datas))
    finally:
        await lam.close()


def only_failure(output: ProcessorOutput) -> FailedRecord:
    assert len(output.failed) == 1, output.failed
    return output.failed[0]


def check_failed(failed: FailedRecord, code: str, attempts: int, data: bytes, spec: str) -> None:
    assert failed.output_type == "processing-failed"
    assert failed.error_code == code, failed.error_message
    assert failed.error_message
    assert failed.details == {"lambdaArn": spec, "attemptsMade": attempts}
    assert bytes(failed.record.data) == data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", ["tests.handlers:upper", "tests.handlers:async_upper"])
async def test_transforms_records_keeping_their_place(mode: str, spec: str) -> None:
    output = await run(spec, b"a", b"bc", b"def", mode=mode)
    assert output.failed == []
    assert [bytes(r.data) for r in output.records] == [b"A", b"BC", b"DEF"]
    assert [(r.seq, r.sub_seq, r.arrival_ms) for r in output.records] == [
        (100, 0, 1_700_000_000_000),
        (101, 1, 1_700_000_000_001),
        (102, 0, 1_700_000_000_002),
    ]


def test_registered_under_its_type() -> None:
    config = ProcessorConfig.model_validate(
        {"Type": "Lambda", "Parameters": {"LambdaArn": "tests.handlers:identity"}}
    )
    built = PROCESSORS["Lambda"](config, context("inline"))
    assert isinstance(built, LambdaProcessor) and built.type == "Lambda"
    assert (built.retries, built.buffer_bytes, built.buffer_interval_seconds) == (3, 1024**2, 60)


async def test_dropped_records_are_gone_and_failed_ones_keep_their_original_bytes() -> None:
    output = await run("tests.handlers:drop_odd", b"1", b"2", b"3", b"4")
    assert [bytes(r.data) for r in output.records] == [b"2", b"4"]
    assert output.failed == []
    spec = "tests.handlers:fail_bad"
    output = await run(spec, b"good", b"bad one", b"fine")
    assert [bytes(r.data) for r in output.records] == [b"good", b"fine"]
    failed = only_failure(output)
    check_failed(failed, "Lambda.ProcessingFailed", 1, b"bad one", spec)
    assert (failed.record.seq, failed.record.sub_seq) == (101, 1)


@pytest.mark.parametrize("mode", MODES)
async def test_a_raising_function_is_retried_then_fails_every_record(mode: str) -> None:
    spec = "tests.handlers:raise_error"
    output = await run(spec, b"x", b"y", mode=mode, NumberOfRetries=2)
    assert output.records == []
    assert [bytes(f.record.data) for f in output.failed] == [b"x", b"y"]
    for failed in output.failed:
        check_failed(failed, "Lambda.FunctionError", 3, bytes(failed.record.data), spec)
        assert "ValueError: no thanks" in failed.error_message


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_a_hung_function_times_out(mode: str) -> None:
    spec = "tests.handlers:sleep_forever"
    started = time.monotonic()
    output = await run(spec, b"x", mode=mode, timeout=0.5, NumberOfRetries=1)
    check_failed(only_failure(output), "Lambda.FunctionTimedOut", 2, b"x", spec)
    assert time.monotonic() - started < 8


async def test_a_timed_out_worker_is_killed_and_replaced() -> None:
    lam = processor("tests.handlers:exit_when_told", context(workers=1, timeout=3))
    pool = lam._invoker
    assert isinstance(pool, WorkerPool)
    try:
        assert bytes((await lam.process(records(b"one"))).records[0].data) == b"one"
        [first] = pool.pids
        lam2 = processor("tests.handlers:sleep_forever", context(workers=1, timeout=0.5))
        sleeper = lam2._invoker
        assert isinstance(sleeper, WorkerPool)
        output = await lam2.process(records(b"z"))
        assert output.failed[0].error_code == "Lambda.FunctionTimedOut"
        assert sleeper.pids == []  # killed, not left behind
        await lam2.close()
        assert bytes((await lam.process(records(b"two"))).records[0].data) == b"two"
        assert pool.pids == [first]
    finally:
        await lam.close()


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("tests.handlers:exit_hard", "exited with code 3"),
        ("tests.handlers:segfault", "SIGSEGV"),
    ],
)
async def test_a_crashed_worker_fails_the_attempt(spec: str, reason: str) -> None:
    output = await run(spec, b"x", NumberOfRetries=1)
    failed = only_failure(output)
    check_failed(failed, "Lambda.FunctionError", 2, b"x", spec)
    assert reason in failed.error_message


async def test_a_worker_killed_mid_call_is_replaced_and_the_next_call_works() -> None:
    lam = processor("tests.handlers:slow_first", context(workers=1), NumberOfRetries=0)
    pool = lam._invoker
    assert isinstance(pool, WorkerPool)
    try:
        call = asyncio.create_task(lam.process(records(b"30:")))
        while not pool.pids:
            await asyncio.sleep(0.05)
        [victim] = pool.pids
        await asyncio.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        output = await asyncio.wait_for(call, 10)
        failed = only_failure(output)
        assert failed.error_code == "Lambda.FunctionError"
        assert "SIGKILL" in failed.error_message
        output = await lam.process(records(b"0:ok"))
        assert [bytes(r.data) for r in output.records] == [b"0:ok"]
        assert pool.pids and pool.pids != [victim]
    finally:
        await lam.close()


async def test_a_function_that_allocates_without_end_fails_in_its_worker() -> None:
    spec = "tests.handlers:allocate_forever"
    lam = processor(spec, context(memory_mib=384), NumberOfRetries=0)
    try:
        failed = only_failure(await lam.process(records(b"x")))
        check_failed(failed, "Lambda.FunctionError", 1, b"x", spec)
        assert "MemoryError" in failed.error_message or "killed" in failed.error_message
    finally:
        await lam.close()


async def test_concurrent_invocations_keep_the_input_order() -> None:
    # 150 kB records and a 0.2 MB buffer: one record per invocation, two running at once.
    pad = b"p" * 150_000
    datas = [b"1.0:" + pad, b"0:" + pad, b"0.5:" + pad, b"0:" + pad]
    started = time.monotonic()
    output = await run("tests.handlers:slow_first", *datas, BufferSizeInMBs=0.2)
    assert [bytes(r.data) for r in output.records] == datas
    assert [r.seq for r in output.records] == [100, 101, 102, 103]
    assert time.monotonic() - started < 1.5 + 3  # the two slow calls overlapped the quick ones


@pytest.mark.parametrize(
    ("spec", "code", "which"),
    [
        ("tests.handlers:not_json", "Lambda.JsonProcessingException", "all"),
        ("tests.handlers:no_records", "Lambda.JsonProcessingException", "all"),
        ("tests.handlers:missing_first", "Lambda.MissingRecordId", "first"),
        ("tests.handlers:unknown_id", "Lambda.MissingRecordId", "first"),
        ("tests.handlers:duplicate_first", "Lambda.DuplicatedRecordId", "first"),
        ("tests.handlers:bad_result_first", "Lambda.JsonProcessingException", "first"),
        ("tests.handlers:no_data_first", "Lambda.JsonProcessingException", "first"),
        ("tests.handlers:bad_base64_first", "Lambda.JsonProcessingException", "first"),
    ],
)
async def test_contract_breaks_fail_the_records_they_break(
    spec: str, code: str, which: str
) -> None:
    output = await run(spec, b"a", b"b", b"c", NumberOfRetries=2)
    failing = [b"a", b"b", b"c"] if which == "all" else [b"a"]
    assert [bytes(f.record.data) for f in output.failed] == failing
    for failed in output.failed:
        check_failed(failed, code, 1, bytes(failed.record.data), spec)  # not retried
    assert [bytes(r.data) for r in output.records] == [b"a", b"b", b"c"][len(failing) :]


@pytest.mark.parametrize("spec", ["tests.handlers:unserialisable", "tests.handlers:huge_response"])
async def test_an_unusable_answer_is_a_function_error(spec: str) -> None:
    output = await run(spec, b"a", NumberOfRetries=1)
    check_failed(only_failure(output), "Lambda.FunctionError", 2, b"a", spec)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "spec",
    [
        "tests.no_such_module:fn",
        "tests.handlers:no_such_function",
        "tests/transform_files/broken.py:handler",
        "tests/transform_files/none.py:handler",
    ],
)
async def test_a_function_that_cannot_be_imported_is_not_found(
    spec: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    output = await run(spec, b"a", b"b", mode=mode)
    assert len(output.failed) == 2
    for failed in output.failed:
        check_failed(failed, "Lambda.ResourceNotFound", 1, bytes(failed.record.data), spec)


@pytest.mark.parametrize("mode", MODES)
async def test_a_function_in_a_file(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    output = await run("tests/transform_files/reverse.py:handler", b"abc", mode=mode)
    assert [bytes(r.data) for r in output.records] == [b"cba"]


async def test_partition_keys_become_lambda_keys() -> None:
    output = await run("tests.handlers:partition_keys", b"acme", b"globex")
    assert [r.lambda_keys for r in output.records] == [{"customer": "acme"}, {"customer": "globex"}]


@pytest.mark.parametrize("spec", ["tests.handlers:powertools", "tests.handlers:powertools_asdict"])
@pytest.mark.parametrize("mode", ["process", "inline"])
async def test_a_powertools_handler_runs_unchanged(spec: str, mode: str) -> None:
    output = await run(spec, b"abc", b"drop", b"hello", mode=mode)
    assert output.failed == []
    assert [bytes(r.data) for r in output.records] == [b"cba", b"olleh"]
    assert [r.lambda_keys for r in output.records] == [{"len": "3"}, {"len": "5"}]


@pytest.mark.parametrize("kinesis", [False, True])
async def test_the_event_and_context_the_function_sees(kinesis: bool) -> None:
    lam = processor("tests.handlers:echo_event", context(kinesis=kinesis, memory_mib=768))
    try:
        output = await lam.process(records(b"\x00\xff", b"two", kinesis=kinesis))
    finally:
        await lam.close()
    seen = orjson.loads(bytes(output.records[0].data))
    event, ctx = seen["event"], seen["context"]
    assert uuid.UUID(event["invocationId"]).version == 4
    expected_keys = ["invocationId", "deliveryStreamArn", "region", "records"]
    if kinesis:
        expected_keys.insert(3, "sourceKinesisStreamArn")
        assert event["sourceKinesisStreamArn"] == KINESIS_ARN
    assert list(event) == expected_keys
    assert event["deliveryStreamArn"] == STREAM_ARN and event["region"] == "eu-west-1"
    first, second = event["records"]
    assert base64.b64decode(first["data"]) == b"\x00\xff"
    assert first["approximateArrivalTimestamp"] == 1_700_000_000_000
    assert first["recordId"] != second["recordId"]
    if kinesis:
        assert second["kinesisRecordMetadata"] == {
            "shardId": "shardId-000000000001",
            "partitionKey": "pk1",
            "approximateArrivalTimestamp": 1_699_999_999_001,
            "sequenceNumber": "495400001",
            "subsequenceNumber": 1,
        }
    else:
        assert "kinesisRecordMetadata" not in first
    assert ctx["function_name"] == "echo_event"
    assert (
        ctx["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:echo_event"
    )
    assert ctx["function_version"] == "$LATEST"
    assert ctx["memory_limit_in_mb"] == 768
    assert ctx["log_group_name"] == "/aws/lambda/echo_event"
    assert 0 < ctx["remaining"] <= 10_000
    assert uuid.UUID(ctx["aws_request_id"])


class Recording(PayloadInvoker):
    """An invoker that answers as identity and keeps each event it was sent."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        self.events.append(payload)
        event = orjson.loads(payload)
        return orjson.dumps({"records": [{**r, "result": "Ok"} for r in event["records"]]})

    async def close(self) -> None:
        pass


async def test_invocations_are_cut_by_buffer_size_and_the_request_limit() -> None:
    recording = Recording()
    lam = processor("tests.handlers:identity", invoker=recording, BufferSizeInMBs=1)
    mib = 1024 * 1024
    datas = [b"a" * (mib // 2)] * 5 + [b"b" * (5 * mib)] + [b"c" * 10]
    output = await lam.process(records(*datas))
    assert [len(orjson.loads(e)["records"]) for e in recording.events] == [2, 2, 2]
    assert all(len(e) <= PAYLOAD_LIMIT for e in recording.events)
    assert [bytes(r.data) for r in output.records] == datas[:5] + datas[6:]
    too_large = only_failure(output)
    check_failed(too_large, "Lambda.RequestEntityTooLarge", 0, datas[5], "tests.handlers:identity")


@pytest.mark.parametrize("kinesis", [False, True])
def test_event_size_is_known_before_it_is_built(kinesis: bool) -> None:
    shape = EventShape.of(context(kinesis=kinesis))
    batch = records(b"", b"x" * 1001, 'é"\\'.encode(), kinesis=kinesis)
    ids = [f"id-{i}" for i in range(len(batch))]
    invocation = str(uuid.uuid4())
    event = shape.event(invocation, list(zip(ids, batch, strict=True)))
    sizes = [shape.entry_size(i, r) for i, r in zip(ids, batch, strict=True)]
    assert len(event) == shape.envelope_size(invocation) + sum(sizes) + len(batch) - 1


async def test_an_empty_call_invokes_nothing() -> None:
    recording = Recording()
    lam = processor("tests.handlers:identity", invoker=recording)
    assert await lam.process([]) == ProcessorOutput()
    assert recording.events == []


def test_check_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert check_handler("tests.handlers:identity") is None
    assert check_handler("tests/transform_files/reverse.py:handler") is None
    assert check_handler("arn:aws:lambda:us-east-1:123456789012:function:f") is None
    assert "no module named tests.nope" in str(check_handler("tests.nope:f"))
    assert "has no function nope" in str(check_handler("tests.handlers:nope"))
    assert "not callable" in str(check_handler("tests.handlers:NOT_CALLABLE"))
    assert "broken on purpose" in str(check_handler("tests/transform_files/broken.py:handler"))
    assert "no file" in str(check_handler("tests/transform_files/none.py:handler"))
    assert check_handler("not a spec") is not None


@pytest.mark.parametrize(
    "spec",
    [
        "tests.handlers:upper",
        "tests.handlers:drop_odd",
        "tests.handlers:fail_bad",
        "tests.handlers:missing_first",
        "tests.handlers:partition_keys",
        "tests.handlers:raise_error",
    ],
)
async def test_runs_come_out_as_the_records_would(spec: str) -> None:
    from firehose.batch import RecordRun
    from transforms.processor import ProcessingRecord

    mib = 1024 * 1024
    datas = [str(i).encode() for i in range(40)] + [b"bad", b"x" * (7 * mib), b"5", b"bad"]
    runs = [
        RecordRun(100, 1, [len(d) for d in datas[:25]], memoryview(b"".join(datas[:25]))),
        RecordRun(
            200,
            2,
            [len(d) for d in datas[25:]],
            memoryview(b"".join(datas[25:])),
            [200 + i // 2 for i in range(len(datas) - 25)],
            [i % 2 for i in range(len(datas) - 25)],
        ),
    ]
    as_records = [r for run in runs for r in run.records()]
    lam = processor(spec, context(memory_mib=0), NumberOfRetries=1)
    lam.buffer_bytes = 10  # a few records per invocation, the runs cut across invocations
    try:
        assert lam.takes_runs
        expected = await lam.process(
            [ProcessingRecord(r.seq, r.arrival_ms, r.data, r.sub_seq) for r in as_records]
        )
        routed, failed = await lam.process_runs(runs)
    finally:
        await lam.close()
    got = [r for run in routed for r in run.records()]
    assert [(r.seq, r.sub_seq, r.arrival_ms, bytes(r.data)) for r in got] == [
        (r.seq, r.sub_seq, r.arrival_ms, bytes(r.data)) for r in expected.records
    ]
    assert [
        (f.record.seq, f.record.sub_seq, bytes(f.record.data), f.error_code, f.details)
        for f in failed
    ] == [
        (f.record.seq, f.record.sub_seq, bytes(f.record.data), f.error_code, f.details)
        for f in expected.failed
    ]
    assert any(f.error_code == "Lambda.RequestEntityTooLarge" for f in failed)
