"""The processing stage: a stream's processors, run in Firehose's order on what the log holds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import is_

from firehose.batch import PartitionKey, RecordRun
from firehose.config import DeliveryStreamConfig, ExtendedS3Destination
from firehose.destination import FailedRecord
from firehose.processing_config import ProcessingConfiguration
from firehose.stage import StageOutput
from transforms.field_pick import FieldPicker
from transforms.lambda_handler import check_handler
from transforms.lambda_transform import LambdaProcessor
from transforms.metadata_extraction import MetadataExtraction
from transforms.partitioning import PartitionRouter
from transforms.picked_routing import route_picked
from transforms.processor import ProcessingContext, ProcessingRecord, Processor
from transforms.records import partitioned_runs, records_to_runs
from transforms.registry import KINESIS_SOURCE_STEPS, ORDER, PROCESSORS

# Records converted between two yields to the event loop.
YIELD_EVERY = 4096
# Processors Firehose runs after dynamic partitioning: records get their partition (or fail,
# as they were) before these change them. Each keeps its records' identity.
AFTER_PARTITIONING = frozenset({"AppendDelimiterToRecord"})


class ProcessingStage:
    """Runs processors one after the other over the records of a read, then hands the records
    that are left to the destination buffers as runs: one partition, or with dynamic
    partitioning the one `router` names for each record."""

    def __init__(
        self,
        processors: Sequence[Processor],
        router: PartitionRouter | None = None,
        source_steps: Sequence[Processor] = (),
    ) -> None:
        self.processors = list(processors)
        self.router = router
        # Steps that turn what the source logged into its records (a Kinesis source's envelope
        # and KPL steps): their output is also what the source-record backup gets.
        self.source_steps = list(source_steps)

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        picked = self._picked_routing()
        if picked is not None:
            picked_runs = await route_picked(runs, *picked, YIELD_EVERY)
            if picked_runs is not None:
                return StageOutput(routed=picked_runs)
        runs_taker = self._runs_taker()
        if runs_taker is not None:
            # Only a transform in workers, no partitioning: the runs go through as slices,
            # without a Python object per record.
            routed, failed = await runs_taker.process_runs(runs)
            return StageOutput(routed=[(None, run) for run in routed], failed=failed)
        records: list[ProcessingRecord] = []
        for run in runs:
            records += _records_of(run)
            if len(records) % YIELD_EVERY < len(run.lengths):
                await asyncio.sleep(0)  # a 16 MiB read must not hold the API's loop
        output = StageOutput()
        for step in self.source_steps:
            result = await step.process(records)
            records = result.records
            output.failed.extend(result.failed)
        if self.source_steps:
            output.source = [run for _, run in records_to_runs(records)]
        partitions: list[PartitionKey] | None = None
        for processor in self.processors:
            if partitions is None and processor.type in AFTER_PARTITIONING:
                records, partitions = self._partition(records, output.failed)
            result = await processor.process(records)
            if partitions is not None:
                partitions = _kept_partitions(records, partitions, result.records)
            records = result.records
            output.failed.extend(result.failed)
            await asyncio.sleep(0)
        if self.router is None:
            output.routed = records_to_runs(records)
            return output
        if partitions is None:
            records, partitions = self._partition(records, output.failed)
        output.routed = partitioned_runs(records, partitions)
        return output

    def _picked_routing(self) -> tuple[FieldPicker, PartitionRouter] | None:
        """The picker and router when the stage is MetadataExtraction on its fast path, then
        partitioning by query keys alone: a read may then go through `route_picked`."""
        if self.router is None or self.source_steps or len(self.processors) != 1:
            return None
        processor = self.processors[0]
        if not isinstance(processor, MetadataExtraction) or processor.picker is None:
            return None
        return (processor.picker, self.router) if self.router.query_keys_only else None

    def _runs_taker(self) -> LambdaProcessor | None:
        if self.router is not None or self.source_steps or len(self.processors) != 1:
            return None
        processor = self.processors[0]
        if isinstance(processor, LambdaProcessor) and processor.takes_runs:
            return processor
        return None

    def _partition(
        self, records: list[ProcessingRecord], failed: list[FailedRecord]
    ) -> tuple[list[ProcessingRecord], list[PartitionKey]]:
        """The records that have a partition, and their partitions in the same order; the
        others are added to `failed`, with their data as it entered partitioning."""
        if self.router is None:
            return records, [None] * len(records)
        partition_of = self.router.partition
        kept, partitions = [], []
        for record in records:
            partition = partition_of(record)
            if isinstance(partition, FailedRecord):
                failed.append(partition)
            else:
                kept.append(record)
                partitions.append(partition)
        return kept, partitions

    async def close(self) -> None:
        for processor in [*self.source_steps, *self.processors]:
            await processor.close()


def _records_of(run: RecordRun) -> list[ProcessingRecord]:
    """A run's records as the processors take them (slices of the run's bytes, no copy)."""
    data = run.data
    ends = list(accumulate(run.lengths, initial=0))
    seqs = run.seqs or range(run.first_seq, run.first_seq + len(run.lengths))
    sub_seqs = run.sub_seqs or repeat(0)
    arrivals = run.arrivals or repeat(run.arrival_ms)
    return [
        ProcessingRecord(seq, arrival, data[start:end], sub_seq)
        for seq, arrival, sub_seq, start, end in zip(
            seqs, arrivals, sub_seqs, ends, ends[1:], strict=False
        )
    ]


def _kept_partitions(
    before: list[ProcessingRecord],
    partitions: list[PartitionKey],
    after: list[ProcessingRecord],
) -> list[PartitionKey]:
    """The partitions of the records a processor after partitioning gave back: the same list
    when it kept them all in place (AppendDelimiterToRecord does), else found by identity."""
    if len(after) == len(before) and all(map(is_, after, before)):
        return partitions
    by_id = {id(record): partition for record, partition in zip(before, partitions, strict=True)}
    return [by_id[id(record)] for record in after]


def build_stage(
    processing: ProcessingConfiguration | None,
    context: ProcessingContext,
    router: PartitionRouter | None = None,
    source_steps: Sequence[Processor] = (),
) -> ProcessingStage | None:
    """The stage a destination's ProcessingConfiguration asks for, after the source's own steps;
    None when none is asked for. With `router` (dynamic partitioning) records are routed to
    partitions."""
    if processing is None or not processing.active:
        if router is None and not source_steps:
            return None
        return ProcessingStage([], router, source_steps)
    by_type = {config.type: config for config in processing.active}
    missing = [kind for kind in by_type if kind not in PROCESSORS]
    if missing:
        raise ValueError(f"processor types not available: {', '.join(missing)}")
    return ProcessingStage(
        [PROCESSORS[kind](by_type[kind], context) for kind in ORDER if kind in by_type],
        router,
        source_steps,
    )


def source_steps(config: DeliveryStreamConfig, context: ProcessingContext) -> list[Processor]:
    """The stage steps a stream's source needs before its ProcessingConfiguration."""
    if config.kinesis_source is None:
        return []
    return [PROCESSORS[kind](None, context) for kind in KINESIS_SOURCE_STEPS]  # type: ignore[arg-type]


def needs_stage(config: DeliveryStreamConfig) -> bool:
    """Whether a stream processes its records at all (processors, dynamic partitioning, or a
    source whose log entries must be unwrapped)."""
    processing = config.destination.processing_configuration
    return (
        bool(processing is not None and processing.active)
        or build_router(config) is not None
        or config.kinesis_source is not None
    )


def build_router(config: DeliveryStreamConfig) -> PartitionRouter | None:
    """The partition router of a stream with dynamic partitioning enabled, else None."""
    section = config.destination
    if isinstance(section, ExtendedS3Destination) and section.partitioned:
        return PartitionRouter(section.prefix)
    return None


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
