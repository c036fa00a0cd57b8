"""`DeliveryStreamDescription` shapes built from a stream's config, defaults filled as AWS does."""

from __future__ import annotations

from typing import Any

from firehose.config import DeliveryStreamConfig

DESTINATION_ID = "destinationId-000000000001"


def stream_arn(name: str, *, region: str, account_id: str) -> str:
    return f"arn:aws:firehose:{region}:{account_id}:deliverystream/{name}"


def describe(
    config: DeliveryStreamConfig,
    *,
    region: str,
    account_id: str,
    created_at: float,
    updated_at: float | None = None,
    status: str = "ACTIVE",
    version: int = 1,
    encryption: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `DeliveryStreamDescription` of a stream defined by `config`; a Kinesis source's
    DeliveryStartTimestamp is when this instance started (it reads from then on).

    `encryption` is the `DeliveryStreamEncryptionConfiguration` shown (never enabled: DISABLED).
    """
    return {
        "DeliveryStreamName": config.name,
        "DeliveryStreamARN": stream_arn(config.name, region=region, account_id=account_id),
        "DeliveryStreamStatus": status,
        "DeliveryStreamType": config.type,
        "DeliveryStreamEncryptionConfiguration": encryption
        or (
            {"Status": "DISABLED"} if config.encryption is None else config.encryption.description()
        ),
        "VersionId": str(version),
        "CreateTimestamp": created_at,
        "LastUpdateTimestamp": created_at if updated_at is None else updated_at,
        "Source": _source(config, created_at),
        "Destinations": [
            {"DestinationId": DESTINATION_ID, **config.destination.description(account_id)}
        ],
        "HasMoreDestinations": False,
    }


def _source(config: DeliveryStreamConfig, started_at: float) -> dict[str, Any]:
    if config.kinesis_source is None:
        return {"DirectPutSourceDescription": {}}
    return {
        "KinesisStreamSourceDescription": {
            "KinesisStreamARN": config.kinesis_source.kinesis_stream_arn,
            "RoleARN": config.kinesis_source.role_arn,
            "DeliveryStartTimestamp": started_at,
        }
    }
