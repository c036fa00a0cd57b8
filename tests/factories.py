"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firehose.config import DeliveryStreamConfig
from firehose.destination import ErrorOutput, SourceBackup
from firehose.retry import RetryPolicy
from firehose.stage import Stage
from firehose.stream import STALL_SECONDS, DeliveryStream
from tests.memory_destination import MemoryDestination


def stream_config(
    name: str = "events",
    *,
    size_mib: int = 5,
    interval: int = 300,
    encryption: dict[str, Any] | None = None,
    **s3: Any,
) -> DeliveryStreamConfig:
    """An S3 stream; `encryption` is its DeliveryStreamEncryptionConfigurationInput."""
    body: dict[str, Any] = {
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::bucket",
            "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": interval},
            **s3,
        },
    }
    if encryption is not None:
        body["DeliveryStreamEncryptionConfigurationInput"] = encryption
    return DeliveryStreamConfig.model_validate(body)


def memory_stream(
    data_dir: Path,
    destination: MemoryDestination | None = None,
    *,
    max_undelivered_bytes: int = 1 << 30,
    stage: Stage | None = None,
    error_output: ErrorOutput | None = None,
    retry_policy: RetryPolicy | None = None,
    stall_seconds: float = STALL_SECONDS,
    source_backup: SourceBackup | None = None,
    log_key_file: Path | None = None,
    **config: Any,
) -> tuple[DeliveryStream, MemoryDestination]:
    destination = destination or MemoryDestination()
    stream = DeliveryStream(
        stream_config(**config),
        destination,
        data_dir=data_dir,
        max_undelivered_bytes=max_undelivered_bytes,
        stage=stage,
        error_output=error_output,
        retry_policy=retry_policy,
        stall_seconds=stall_seconds,
        source_backup=source_backup,
        log_key_file=log_key_file,
    )
    return stream, destination
