"""The processing stage: a stream's processors, run in Firehose's order on what the log holds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import accumulate, repeat

from firehose.batch import PartitionKey, RecordRun
from firehose.config import DeliveryStreamConfig
from firehose.processing_config import ProcessingConfiguration
from firehose.stage import StageOutput
from transforms.lambda_handler import check_handler
from transforms.processor import ProcessingContext, ProcessingRecord, Processor
from transforms.registry import ORDER, PROCESSORS

# Records converted between two yields to the event loop.
YIELD_EVERY = 4096


class ProcessingStage:
    """Runs processors one after the other over the records of a read, then hands the records
    that are left to the destination buffers as runs (one partition unless `partition` says)."""

    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = list(processors)

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        records: list[ProcessingRecord] = []
        for run in runs:
            records += _records_of(run)
            if len(records) % YIELD_EVERY < len(run.lengths):
                await asyncio.sleep(0)  # a 16 MiB read must not hold the API's loop
        output = StageOutput()
        for processor in self.processors:
            result = await processor.process(records)
            records = result.records
            output.failed.extend(result.failed)
            await asyncio.sleep(0)
        output.routed = _runs(records)
        return output

    async def close(self) -> None:
        for processor in self.processors:
            await processor.close()


def _records_of(run: RecordRun) -> list[ProcessingRecord]:
    """A run's records as the processors take them (slices of the run's bytes, no copy)."""
    data, arrival = run.data, run.arrival_ms
    ends = list(accumulate(run.lengths, initial=0))
    seqs = run.seqs or range(run.first_seq, run.first_seq + len(run.lengths))
    sub_seqs = run.sub_seqs or repeat(0)
    return [
        ProcessingRecord(seq, arrival, data[start:end], sub_seq)
        for seq, sub_seq, start, end in zip(seqs, sub_seqs, ends, ends[1:], strict=False)
    ]


def _runs(records: list[ProcessingRecord]) -> list[tuple[PartitionKey, RecordRun]]:
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
                None,
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


def build_stage(
    processing: ProcessingConfiguration | None, context: ProcessingContext
) -> ProcessingStage | None:
    """The stage a destination's ProcessingConfiguration asks for; None when it asks for none."""
    if processing is None or not processing.active:
        return None
    by_type = {config.type: config for config in processing.active}
    missing = [kind for kind in by_type if kind not in PROCESSORS]
    if missing:
        raise ValueError(f"processor types not available: {', '.join(missing)}")
    return ProcessingStage(
        [PROCESSORS[kind](by_type[kind], context) for kind in ORDER if kind in by_type]
    )


def processing_problems(config: DeliveryStreamConfig) -> list[tuple[str, str]]:
    """What a stream's processors need beyond their parameters' form: a transform callable
    that imports. (field path, problem) pairs for the config loader."""
    processing = config.destination.processing_configuration
    if processing is None:
        return []
    problems = []
    for index, processor in enumerate(processing.active):
        if processor.type == "Lambda":
            problem = check_handler(processor.values()["LambdaArn"])
            if problem is not None:
                field = (
                    f"{config.destination.section}.ProcessingConfiguration.Processors[{index}]"
                    ".Parameters.LambdaArn"
                )
                problems.append((field, problem))
    return problems
