"""What the built-in processors share: how a record that gives up becomes an error record, and
how the records split from one log record are numbered."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from firehose.batch import PartitionKey, Record, RecordRun
from firehose.destination import FailedRecord
from transforms.processor import ProcessingRecord

# The most sub-records Firehose takes out of one record (RecordDeAggregation).
MAX_SUB_RECORDS = 500


def failure(
    record: ProcessingRecord, output_type: str, error_code: str, error_message: str
) -> FailedRecord:
    """`record` for the error output, with its data as it entered the step that gave up."""
    return FailedRecord(
        Record(record.seq, record.arrival_ms, record.data, record.sub_seq),
        output_type,
        error_code,
        error_message,
    )


class SubSeqs:
    """Numbers the records split out of one log record 0, 1, 2… within one `process` call.

    Counting per seq rather than per input record keeps the numbers distinct when a step splits
    records an earlier step already split (KPL, then JSON de-aggregation).
    """

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def take(self, seq: int, count: int = 1) -> int:
        """The first of `count` consecutive sub-seqs for records of `seq`."""
        first = self._next.get(seq, 0)
        self._next[seq] = first + count
        return first


def split(record: ProcessingRecord, data: bytes | memoryview, sub_seq: int) -> ProcessingRecord:
    """A record split out of `record`: its seq, arrival and keys, its own data and sub-seq."""
    return ProcessingRecord(
        record.seq,
        record.arrival_ms,
        data,
        sub_seq,
        record.lambda_keys,
        record.query_keys,
        record.kinesis,
    )


def records_to_runs(
    records: list[ProcessingRecord], partition: PartitionKey = None
) -> list[tuple[PartitionKey, RecordRun]]:
    """Records as runs: consecutive records of one arrival time share one joined buffer."""
    routed: list[tuple[PartitionKey, RecordRun]] = []
    start = 0
    while start < len(records):
        stop = start + 1
        arrival = records[start].arrival_ms
        while stop < len(records) and records[stop].arrival_ms == arrival:
            stop += 1
        group = records[start:stop]
        data = memoryview(b"".join(record.data for record in group))
        routed.append(
            (
                partition,
                RecordRun(
                    group[0].seq,
                    arrival,
                    [len(record.data) for record in group],
                    data,
                    [record.seq for record in group],
                    [record.sub_seq for record in group],
                ),
            )
        )
        start = stop
    return routed


def partitioned_runs(
    records: Sequence[ProcessingRecord], partitions: Sequence[PartitionKey]
) -> list[tuple[PartitionKey, RecordRun]]:
    """Each record in the partition of the same place in `partitions`, as one run per
    partition (one joined buffer, records in order, each with its own arrival time)."""
    groups: dict[PartitionKey, list[ProcessingRecord]] = {}
    for record, partition in zip(records, partitions, strict=True):
        group = groups.get(partition)
        if group is None:
            groups[partition] = [record]
        else:
            group.append(record)
    return [(partition, _run_of(group)) for partition, group in groups.items()]


_DATA, _SEQ = attrgetter("data"), attrgetter("seq")
_SUB_SEQ, _ARRIVAL = attrgetter("sub_seq"), attrgetter("arrival_ms")


def _run_of(records: list[ProcessingRecord]) -> RecordRun:
    """Records as one run; their arrival times only when they differ."""
    return run_of_parts(
        list(map(_DATA, records)),
        list(map(_SEQ, records)),
        list(map(_SUB_SEQ, records)),
        list(map(_ARRIVAL, records)),
    )


def run_of_parts(
    datas: Sequence[bytes | memoryview], seqs: list[int], sub_seqs: list[int], arrivals: list[int]
) -> RecordRun:
    """A partition's records, given as their parts, as one run (one joined buffer); their
    arrival times only when they differ."""
    oldest = min(arrivals)
    return RecordRun(
        seqs[0],
        oldest,
        list(map(len, datas)),
        memoryview(b"".join(datas)),
        seqs,
        sub_seqs,
        None if arrivals.count(oldest) == len(arrivals) else arrivals,
    )
