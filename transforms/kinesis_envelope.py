"""The first step of a Kinesis-sourced stream: take each record out of its log envelope.

The record's data goes on as `data`, its shard, partition key, sequence number and arrival
time as `kinesis`, which KPL de-aggregation and the Lambda event carry on.
"""

from __future__ import annotations

from firehose.batch import Record
from firehose.destination import FailedRecord
from firehose.processing_config import ProcessorConfig
from firehose.sources.envelope import NotAnEnvelope, unwrap
from transforms.processor import (
    KinesisRecordMetadata,
    ProcessingContext,
    ProcessingRecord,
    ProcessorOutput,
)

TYPE = "KinesisEnvelope"


class KinesisEnvelope:
    type = TYPE

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        for record in records:
            try:
                envelope = unwrap(record.data)
            except NotAnEnvelope as exc:
                # Never expected: filed rather than delivered with a header in it.
                failed = Record(record.seq, record.arrival_ms, record.data, record.sub_seq)
                output.failed.append(
                    FailedRecord(failed, "processing-failed", "KinesisEnvelope.Damaged", str(exc))
                )
                continue
            record.data = envelope.data
            record.kinesis = KinesisRecordMetadata(
                envelope.shard_id,
                envelope.partition_key,
                envelope.sequence_number,
                envelope.arrival_ms,
            )
            output.records.append(record)
        return output

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig | None, context: ProcessingContext) -> KinesisEnvelope:
    """Takes no parameters, like KPL de-aggregation: no config names this step."""
    return KinesisEnvelope()
