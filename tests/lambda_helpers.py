"""Building Lambda processors and records for the transform tests."""

from __future__ import annotations

from typing import Any

from firehose.processing_config import ProcessorConfig
from firehose.retry import RetryPolicy
from transforms.lambda_transform import Invoker, LambdaProcessor
from transforms.processor import KinesisRecordMetadata, ProcessingContext, ProcessingRecord

STREAM_ARN = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s"
KINESIS_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/k"
FAST = RetryPolicy(initial_backoff_seconds=0.01, max_backoff_seconds=0.02)


def context(
    mode: str = "process",
    *,
    workers: int = 2,
    timeout: float = 10.0,
    memory_mib: int = 512,
    kinesis: bool = False,
) -> ProcessingContext:
    return ProcessingContext(
        stream_name="s",
        stream_arn=STREAM_ARN,
        region="eu-west-1",
        transform_mode=mode,
        transform_workers=workers,
        transform_timeout_seconds=timeout,
        transform_memory_mib=memory_mib,
        source_kinesis_stream_arn=KINESIS_ARN if kinesis else None,
    )


def processor(
    spec: str,
    ctx: ProcessingContext | None = None,
    *,
    invoker: Invoker | None = None,
    **parameters: Any,
) -> LambdaProcessor:
    config = ProcessorConfig.model_validate(
        {"Type": "Lambda", "Parameters": {"LambdaArn": spec, **parameters}}
    )
    return LambdaProcessor(config, ctx or context(), invoker=invoker, retry=FAST)


def records(*datas: bytes, kinesis: bool = False) -> list[ProcessingRecord]:
    return [
        ProcessingRecord(
            seq=100 + i,
            arrival_ms=1_700_000_000_000 + i,
            data=data,
            sub_seq=i % 2,
            kinesis=KinesisRecordMetadata(
                shard_id="shardId-000000000001",
                partition_key=f"pk{i}",
                sequence_number=f"4954{i:05d}",
                approximate_arrival_ms=1_699_999_999_000 + i,
                sub_sequence_number=i,
            )
            if kinesis
            else None,
        )
        for i, data in enumerate(datas)
    ]
