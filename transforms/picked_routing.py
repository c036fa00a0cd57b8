"""Dynamic partitioning on MetadataExtraction's fast path, a read at a time: each record's keys
picked from its bytes and its partition looked up in one pass, with no ProcessingRecord for each
record and no second pass to group them.

It answers only reads in which every record's keys come from the fast path and name a usable
partition. At the first record that needs jq or has no partition it gives up, and the stage
takes its general path for the whole read: the same runs, and the error records for the
records that fail.
"""

from __future__ import annotations

import asyncio
from itertools import repeat

from firehose.batch import PartitionKey, RecordRun
from transforms.field_pick import FieldPicker
from transforms.partitioning import PartitionRouter
from transforms.records import run_of_parts

# A partition's records as they are gathered: data, seqs, sub-seqs and arrival times.
_Group = tuple[list[memoryview], list[int], list[int], list[int]]


async def route_picked(
    runs: list[RecordRun], picker: FieldPicker, router: PartitionRouter, yield_every: int
) -> list[tuple[PartitionKey, RecordRun]] | None:
    """One run for each partition of the read, in the order the partitions first appear (as
    the general path gives them); None when a record needs the general path."""
    pick, partition_of = picker.keys, router.of_query_keys
    groups: dict[PartitionKey, _Group] = {}
    since_yield = 0
    for run in runs:
        data, count = run.data, len(run.lengths)
        seqs = run.seqs or range(run.first_seq, run.first_seq + count)
        sub_seqs = run.sub_seqs or repeat(0, count)
        arrivals = run.arrivals or repeat(run.arrival_ms, count)
        end = 0
        for length, seq, sub_seq, arrival in zip(
            run.lengths, seqs, sub_seqs, arrivals, strict=False
        ):
            start, end = end, end + length
            record = data[start:end]
            keys = pick(record)
            if keys is None:
                return None
            partition = partition_of(keys)
            if partition is None:
                return None
            group = groups.get(partition)
            if group is None:
                group = groups[partition] = ([], [], [], [])
            group[0].append(record)
            group[1].append(seq)
            group[2].append(sub_seq)
            group[3].append(arrival)
        since_yield += count
        if since_yield >= yield_every:
            since_yield = 0
            await asyncio.sleep(0)  # a 16 MiB read must not hold the loop
    return [(partition, run_of_parts(*group)) for partition, group in groups.items()]
