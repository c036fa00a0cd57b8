"""The processing stage: a stream's processors, run in Firehose's order on what the log holds."""

from __future__ import annotations

from collections.abc import Sequence

from firehose.batch import PartitionKey, RecordRun
from firehose.config import DeliveryStreamConfig
from firehose.processing_config import ProcessingConfiguration
from firehose.stage import StageOutput
from transforms.lambda_handler import check_handler
from transforms.processor import ProcessingContext, ProcessingRecord, Processor
from transforms.registry import ORDER, PROCESSORS


class ProcessingStage:
    """Runs processors one after the other over the records of a read, then hands the records
    that are left to the destination buffers as runs (one partition unless `partition` says)."""

    def __init__(
        self, processors: Sequence[Processor], source_steps: Sequence[Processor] = ()
    ) -> None:
        self.processors = list(processors)
        # Steps that turn what the source logged into its records (a Kinesis source's envelope
        # and KPL steps): their output is also what the source-record backup gets.
        self.source_steps = list(source_steps)

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        records = [
            ProcessingRecord(record.seq, record.arrival_ms, record.data, record.sub_seq)
            for run in runs
            for record in run.records()
        ]
        output = StageOutput()
        for step in self.source_steps:
            result = await step.process(records)
            records = result.records
            output.failed.extend(result.failed)
        if self.source_steps:
            output.source = [run for _, run in _runs(records)]
        for processor in self.processors:
            result = await processor.process(records)
            records = result.records
            output.failed.extend(result.failed)
        output.routed = _runs(records)
        return output

    async def close(self) -> None:
        for processor in [*self.source_steps, *self.processors]:
            await processor.close()


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
    processing: ProcessingConfiguration | None,
    context: ProcessingContext,
    source_steps: Sequence[Processor] = (),
) -> ProcessingStage | None:
    """The stage a destination's ProcessingConfiguration asks for, after the source's own steps;
    None when neither asks for any."""
    if processing is None or not processing.active:
        return ProcessingStage([], source_steps) if source_steps else None
    by_type = {config.type: config for config in processing.active}
    missing = [kind for kind in by_type if kind not in PROCESSORS]
    if missing:
        raise ValueError(f"processor types not available: {', '.join(missing)}")
    return ProcessingStage(
        [PROCESSORS[kind](by_type[kind], context) for kind in ORDER if kind in by_type],
        source_steps,
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
