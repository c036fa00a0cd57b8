"""`DeliveryStreamDescription` shapes built from a stream's config, defaults filled as AWS does."""

from __future__ import annotations

from typing import Any

from firehose.config import DeliveryStreamConfig, ExtendedS3Destination

DESTINATION_ID = "destinationId-000000000001"


def stream_arn(name: str, *, region: str, account_id: str) -> str:
    return f"arn:aws:firehose:{region}:{account_id}:deliverystream/{name}"


def _s3_description(s3: ExtendedS3Destination, account_id: str) -> dict[str, Any]:
    plain: dict[str, Any] = {
        "RoleARN": s3.role_arn or f"arn:aws:iam::{account_id}:role/firehose-delivery",
        "BucketARN": s3.bucket_arn,
        "Prefix": s3.prefix,
        "BufferingHints": {
            "SizeInMBs": s3.buffering_hints.size_in_mbs,
            "IntervalInSeconds": s3.buffering_hints.interval_in_seconds,
        },
        "CompressionFormat": s3.compression_format,
        "EncryptionConfiguration": s3.encryption_configuration
        or {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": s3.cloud_watch_logging_options or {"Enabled": False},
    }
    if s3.error_output_prefix:
        plain["ErrorOutputPrefix"] = s3.error_output_prefix
    return plain


def describe(
    config: DeliveryStreamConfig, *, region: str, account_id: str, created_at: float
) -> dict[str, Any]:
    """The `DeliveryStreamDescription` of a stream defined by `config`."""
    plain = _s3_description(config.s3, account_id)
    extended = {**plain, "S3BackupMode": config.s3.s3_backup_mode}
    if config.s3.file_extension:
        extended["FileExtension"] = config.s3.file_extension
    if config.s3.custom_time_zone:
        extended["CustomTimeZone"] = config.s3.custom_time_zone
    return {
        "DeliveryStreamName": config.name,
        "DeliveryStreamARN": stream_arn(config.name, region=region, account_id=account_id),
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": config.type,
        "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
        "VersionId": "1",
        "CreateTimestamp": created_at,
        "LastUpdateTimestamp": created_at,
        "Source": {"DirectPutSourceDescription": {}},
        "Destinations": [
            {
                "DestinationId": DESTINATION_ID,
                "S3DestinationDescription": plain,
                "ExtendedS3DestinationDescription": extended,
            }
        ],
        "HasMoreDestinations": False,
    }
