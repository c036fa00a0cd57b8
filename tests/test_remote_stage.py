"""The stage process: overlapping calls answered in order, a stage process that dies, and
what crosses the pipe coming back as the stage made it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from firehose.batch import RecordRun
from firehose.stage import StageOutput
from tests.factories import stream_config
from tests.lambda_helpers import STREAM_ARN
from tests.test_processing_service import processors
from transforms.processor import ProcessingContext
from transforms.remote_stage import NICENESS, RemoteStage

pytestmark = pytest.mark.timeout(120)
HANDLERS = Path(__file__).with_name("handlers.py")


def remote_stage(handler: str) -> RemoteStage:
    config = stream_config(
        ProcessingConfiguration={
            "Enabled": True,
            "Processors": [
                {
                    "Type": "Lambda",
                    "Parameters": [
                        {"ParameterName": "LambdaArn", "ParameterValue": f"{HANDLERS}:{handler}"}
                    ],
                }
            ],
        }
    )
    context = ProcessingContext(config.name, STREAM_ARN, "us-east-1", transform_timeout_seconds=30)
    return RemoteStage(config, context)


def read(first_seq: int, *datas: bytes) -> list[RecordRun]:
    lengths = [len(d) for d in datas]
    return [RecordRun(first_seq, 1_700_000_000_000, lengths, memoryview(b"".join(datas)))]


def delivered(output: StageOutput) -> list[tuple[int, bytes]]:
    """(seq, data) of every record the stage routed."""
    records = []
    for _, run in output.routed:
        offset = 0
        for index, length in enumerate(run.lengths):
            seq = run.seqs[index] if run.seqs else run.first_seq + index
            records.append((seq, bytes(run.data[offset : offset + length])))
            offset += length
    return records


async def test_overlapping_calls_each_get_their_own_answer() -> None:
    stage = remote_stage("upper")
    try:
        reads = [
            read(seq * 100, *(f"read {seq} record {i}".encode() for i in range(seq * 50 + 1)))
            for seq in range(8)
        ]
        outputs = await asyncio.gather(*(stage.process(runs) for runs in reads))
        # The stage (and the workers it starts) yield the cores to the service's requests.
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, stage._process.pid) == min(19, ours + NICENESS)
    finally:
        await stage.close()
    for seq, output in enumerate(outputs):
        expected = [(seq * 100 + i, f"READ {seq} RECORD {i}".encode()) for i in range(seq * 50 + 1)]
        assert delivered(output) == expected
        assert output.failed == []


async def test_a_killed_stage_process_fails_its_calls_and_the_next_call_starts_another() -> None:
    stage = remote_stage("slow_first")
    try:
        first = await stage.process(read(1, b"0:warm up"))
        assert delivered(first) == [(1, b"0:warm up")]
        child = stage._process.pid
        calls = [asyncio.ensure_future(stage.process(read(seq, b"20:slow"))) for seq in (2, 3)]
        await asyncio.sleep(0.5)  # both sent; the first is in its slow transform
        os.kill(child, signal.SIGKILL)
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(result, RuntimeError) for result in results), results
        again = await stage.process(read(4, b"0:after"))
        assert delivered(again) == [(4, b"0:after")]
        assert stage._process.pid != child
    finally:
        await stage.close()


PARTITIONED_CONTEXT = ProcessingContext(
    "dp", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/dp", "eu-west-1"
)


def run_of(first_seq: int, arrival_ms: int, records: list[bytes]) -> RecordRun:
    return RecordRun(
        first_seq, arrival_ms, [len(r) for r in records], memoryview(b"".join(records))
    )


async def test_partitioned_runs_keep_each_records_arrival_across_the_pipe() -> None:
    config = stream_config(
        "dp",
        size_mib=64,
        Prefix="c=!{partitionKeyFromQuery:c}/",
        ErrorOutputPrefix="errors/",
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration=processors(
            ("MetadataExtraction", {"MetadataExtractionQuery": "{c: (.c)}"}),
            ("AppendDelimiterToRecord", {}),
        ),
    )
    stage = RemoteStage(config, PARTITIONED_CONTEXT)
    try:
        output = await stage.process(
            [
                run_of(0, 100, [b'{"c":"x"}', b'{"c":"y"}', b"oops"]),
                run_of(3, 200, [b'{"c":"x","n":2}', b'{"c":"y"}']),
            ]
        )
    finally:
        await stage.close()
    routed = {partition: run for partition, run in output.routed}
    x = routed[(("partitionKeyFromQuery:c", "x"),)]
    assert [(r.seq, r.arrival_ms, bytes(r.data)) for r in x.records()] == [
        (0, 100, b'{"c":"x"}\n'),
        (3, 200, b'{"c":"x","n":2}\n'),
    ]
    assert (x.arrival_ms, x.arrivals) == (100, [100, 200])
    y = routed[(("partitionKeyFromQuery:c", "y"),)]
    assert [(r.seq, r.arrival_ms) for r in y.records()] == [(1, 100), (4, 200)]
    [failed] = output.failed
    assert (failed.record.seq, failed.record.arrival_ms, bytes(failed.record.data)) == (
        2,
        100,
        b"oops",
    )
    assert failed.error_code == "DynamicPartitioning.MetadataExtractionFailed"
