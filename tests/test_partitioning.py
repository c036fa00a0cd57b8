"""Dynamic partitioning in process: routing records by their keys, refusing unusable values,
the partition limit, the bound on held bytes, object keys per partition."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.objectstore import LocalObjectStore
from destinations.s3 import S3Destination
from firehose.batch import Batch, PartitionKey, RecordRun
from firehose.buffer import PARTITION_COUNT_EXCEEDED, PartitionBuffers
from firehose.config import ExtendedS3Destination
from firehose.destination import FailedRecord
from firehose.keys import MAX_EVALUATED_PREFIX
from transforms.metadata_extraction import MetadataExtraction
from transforms.partitioning import INVALID_VALUE, MISSING_KEY, PartitionRouter
from transforms.processor import ProcessingRecord, ProcessorOutput
from transforms.stage import ProcessingStage

PREFIX = "c=!{partitionKeyFromQuery:c}/r=!{partitionKeyFromLambda:r}/!{timestamp:yyyy}/"


def record(seq: int, c: str | None = "a", r: str | None = "eu", **extra: str) -> ProcessingRecord:
    query = None if c is None else {"c": c, **extra}
    return ProcessingRecord(seq, 1_000, f"r{seq}\n".encode(), 0, None if r is None else {"r": r},
                            query)  # fmt: skip


def test_a_partition_is_the_sorted_keys_the_prefix_uses() -> None:
    partition = PartitionRouter(PREFIX).partition(record(1, unused="x"))
    assert partition == (("partitionKeyFromLambda:r", "eu"), ("partitionKeyFromQuery:c", "a"))


@pytest.mark.parametrize(
    ("given", "code", "says"),
    [
        (record(1, c=None), MISSING_KEY, "!{partitionKeyFromQuery:c}"),
        (record(1, r=None), MISSING_KEY, "!{partitionKeyFromLambda:r}"),
        (record(1, c="a/b"), INVALID_VALUE, "'/'"),
        (record(1, c=".."), INVALID_VALUE, "not a usable path segment"),
        (record(1, c=""), INVALID_VALUE, "not a usable path segment"),
        (record(1, c="a\nb"), INVALID_VALUE, "'\\n'"),
        (record(1, c="a\x7f"), INVALID_VALUE, "'\\x7f'"),
        (record(1, c="x" * MAX_EVALUATED_PREFIX), INVALID_VALUE, "longer than 512"),
    ],
)
def test_records_without_a_usable_partition_fail(
    given: ProcessingRecord, code: str, says: str
) -> None:
    failed = PartitionRouter(PREFIX).partition(given)
    assert isinstance(failed, FailedRecord)
    assert (failed.output_type, failed.error_code) == ("partitioning-failed", code)
    assert says in failed.error_message
    assert failed.record.data == given.data


def test_the_longest_value_that_fits() -> None:
    router = PartitionRouter("c=!{partitionKeyFromQuery:c}/")
    width = len("c=/") + len("2025/12/31/23/")
    assert not isinstance(router.partition(record(1, c="x" * (512 - width))), FailedRecord)
    assert isinstance(router.partition(record(1, c="x" * (513 - width))), FailedRecord)


async def test_the_stage_routes_records_to_partitions_in_order() -> None:
    stage = ProcessingStage(
        [MetadataExtraction("{c: .c}")], PartitionRouter("c=!{partitionKeyFromQuery:c}/")
    )
    data = [b'{"c":"x","n":1}', b'{"c":"y","n":2}', b"{}", b'{"c":"x","n":3}', b'{"c":"a/b"}']
    run = RecordRun(10, 5, [len(d) for d in data], memoryview(b"".join(data)))
    output = await stage.process([run])
    routed = {partition: run for partition, run in output.routed}
    assert set(routed) == {(("partitionKeyFromQuery:c", "x"),), (("partitionKeyFromQuery:c", "y"),)}
    x = routed[(("partitionKeyFromQuery:c", "x"),)]
    assert [bytes(r.data) for r in x.records()] == [data[0], data[3]]
    assert [r.seq for r in x.records()] == [10, 13]
    assert [(f.record.seq, f.error_code) for f in output.failed] == [
        (12, "DynamicPartitioning.MetadataExtractionFailed"),
        (14, INVALID_VALUE),
    ]


def run_of(seq: int, size: int) -> RecordRun:
    return RecordRun(seq, 1_000, [size], memoryview(b"x" * size))


def test_the_partition_limit_refuses_runs_that_would_open_one_more() -> None:
    buffers = PartitionBuffers(1 << 20, 60_000, max_partitions=2)
    buffers.add(run_of(1, 10), (("k", "a"),))
    routed = [((("k", "a"),), run_of(2, 10)), ((("k", "b"),), run_of(3, 10)),
              ((("k", "c"),), run_of(4, 10)), ((("k", "b"),), run_of(5, 10))]  # fmt: skip
    admitted, refused = buffers.admit(routed)
    assert [run.first_seq for _, run in admitted] == [2, 3, 5]
    assert [(f.record.seq, f.error_code) for f in refused] == [(4, PARTITION_COUNT_EXCEEDED)]
    assert refused[0].output_type == "partitioning-failed"


def test_past_the_held_bytes_bound_the_largest_partitions_are_flushed_early() -> None:
    buffers = PartitionBuffers(1 << 20, 60_000, max_held_bytes=1000)
    for seq, (partition, size) in enumerate([("a", 100), ("b", 500), ("c", 300)]):
        assert buffers.add(run_of(seq, size), (("k", partition),)) == []
    assert buffers.held_bytes == 900
    flushed = buffers.add(run_of(9, 200), (("k", "a"),))
    assert [(batch.partition, batch.size_bytes) for batch in flushed] == [((("k", "b"),), 500)]
    assert buffers.held_bytes == 600
    assert buffers.partitions == 2
    assert {b.partition for b in buffers.due(0, everything=True)} == {(("k", "a"),), (("k", "c"),)}
    assert buffers.held_bytes == 0


def test_each_batch_is_keyed_by_its_partition(tmp_path: Path) -> None:
    section = ExtendedS3Destination.model_validate(
        {
            "BucketARN": "arn:aws:s3:::b",
            "Prefix": PREFIX,
            "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {
                "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"}
                    ]},
                    {"Type": "Lambda", "Parameters": [
                        {"ParameterName": "LambdaArn", "ParameterValue": "m:f"}
                    ]},
                ]
            },
        }
    )  # fmt: skip
    store = LocalObjectStore(tmp_path)
    destination = S3Destination("s", section, store, dynamic_partitioning=True)
    batch = Batch(partition=(("partitionKeyFromLambda:r", "eu"), ("partitionKeyFromQuery:c", "a")))
    batch.add(run_of(1, 3))
    key = destination.object_key(batch)
    assert key.startswith("c=a/r=eu/1970/s-1-1970-01-01-00-00-01-")


async def test_a_partition_gets_one_run_of_its_records_from_every_run_read() -> None:
    stage = ProcessingStage(
        [MetadataExtraction("{c: .c}")], PartitionRouter("c=!{partitionKeyFromQuery:c}/")
    )
    first = [b'{"c":"x","n":1}', b'{"c":"y","n":2}', b'{"c":"x","n":3}']
    second = [b'{"c":"x","n":4}', b'{"c":"y","n":5}']
    runs = [
        RecordRun(1, 500, [len(d) for d in first], memoryview(b"".join(first))),
        RecordRun(4, 700, [len(d) for d in second], memoryview(b"".join(second))),
    ]
    output = await stage.process(runs)
    got = {value_of(partition): run for partition, run in output.routed}
    assert [value_of(partition) for partition, _ in output.routed] == ["x", "y"]
    x, y = got["x"], got["y"]
    assert [(r.seq, r.arrival_ms, bytes(r.data)) for r in x.records()] == [
        (1, 500, first[0]), (3, 500, first[2]), (4, 700, second[0]),
    ]  # fmt: skip
    assert [(r.seq, r.arrival_ms) for r in y.records()] == [(2, 500), (5, 700)]
    assert (x.first_seq, x.arrival_ms, y.arrival_ms) == (1, 500, 500)
    [alone] = (await stage.process(runs[1:2])).routed[:1]
    assert alone[1].arrivals is None  # one arrival time: not repeated per record


def value_of(partition: PartitionKey) -> str:
    assert partition is not None
    [(_, value)] = partition
    return value


class DropsOdd:
    """A processor after partitioning that gives back fewer records than it got."""

    type = "AppendDelimiterToRecord"

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        return ProcessorOutput([r for r in records if r.seq % 2 == 0][::-1])

    async def close(self) -> None:
        pass


async def test_records_keep_their_partition_past_a_processor_that_drops_some() -> None:
    stage = ProcessingStage(
        [MetadataExtraction("{c: .c}"), DropsOdd()],
        PartitionRouter("c=!{partitionKeyFromQuery:c}/"),
    )
    data = [b'{"c":"%d"}' % (n % 3) for n in range(9)]
    run = RecordRun(0, 5, [len(d) for d in data], memoryview(b"".join(data)))
    output = await stage.process([run])
    routed = {
        value_of(partition): sorted(r.seq for r in run.records())
        for partition, run in output.routed
    }
    assert routed == {"0": [0, 6], "1": [4], "2": [2, 8]}


def fields_of(routed: list[tuple[PartitionKey, RecordRun]]) -> list[tuple[object, ...]]:
    return [
        (partition, run.first_seq, run.arrival_ms, run.lengths, bytes(run.data), run.seqs,
         run.sub_seqs, run.arrivals)
        for partition, run in routed
    ]  # fmt: skip


@pytest.mark.parametrize("query", ["{c: .c}", "{c: .c, d: .d.e}"])
async def test_a_read_on_the_fast_path_routes_as_the_general_path_does(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MetadataExtraction on its fast path, then routing by query keys, goes a read at a time
    without a record object each; the runs are those the general path (jq) gives: partitions
    in order of first appearance, seqs, sub-seqs and arrival times kept."""
    prefix = "c=!{partitionKeyFromQuery:c}/" + (
        "d=!{partitionKeyFromQuery:d}/" if "d" in query else ""
    )
    router = PartitionRouter(prefix)
    data = [
        b'{"c":"x","d":{"e":"1"}}', b'{"c":"\xc3\xa9t\xc3\xa9","d":{"e":"2"}}',
        b'{"c":1.5,"d":{"e":true}}', b'{"c":"x","d":{"e":"1"},"n":[1,2]}',
        b'{"c":false,"d":{"e":"2"}}', b'{"d":{"e":"1"},"c":"y"}',
    ]  # fmt: skip
    runs = [
        RecordRun(10, 500, [len(d) for d in data[:3]], memoryview(b"".join(data[:3]))),
        RecordRun(13, 400, [len(d) for d in data[3:]], memoryview(b"".join(data[3:])),
                  seqs=[13, 13, 20], sub_seqs=[0, 1, 0], arrivals=[400, 400, 900]),
    ]  # fmt: skip
    general = await ProcessingStage(
        [MetadataExtraction(query, fast_path=False)], PartitionRouter(prefix)
    ).process(runs)
    assert general.failed == []
    stage = ProcessingStage([MetadataExtraction(query)], router)

    def general_path(*args: object) -> None:
        raise AssertionError("the read took the general path")

    monkeypatch.setattr("transforms.stage.partitioned_runs", general_path)
    fast = await stage.process(runs)
    assert fields_of(fast.routed) == fields_of(general.routed)
    assert fast.failed == []
    assert len(fast.routed) == 5


async def test_a_read_with_a_record_the_fast_path_cannot_route_takes_the_general_path() -> None:
    """A record without a usable key, or one only jq can answer, sends its whole read the
    general way: the same runs as with jq alone, and its error record."""
    prefix = "c=!{partitionKeyFromQuery:c}/"
    for bad in (b'{"n":1}', b'{"c":"a/b"}', b'{"c":null}', b'{"c":{"x":1}}', b"not json"):
        data = [b'{"c":"x"}', b'{"c":"y"}', bad, b'{"c":"x"}']
        runs = [RecordRun(1, 5, [len(d) for d in data], memoryview(b"".join(data)))]
        fast = await ProcessingStage(
            [MetadataExtraction("{c: .c}")], PartitionRouter(prefix)
        ).process(runs)
        general = await ProcessingStage(
            [MetadataExtraction("{c: .c}", fast_path=False)], PartitionRouter(prefix)
        ).process(runs)
        assert fields_of(fast.routed) == fields_of(general.routed)
        assert [(f.record.seq, f.error_code, f.error_message) for f in fast.failed] == [
            (f.record.seq, f.error_code, f.error_message) for f in general.failed
        ]
        assert [f.record.seq for f in fast.failed] == [3]
