"""`HttpEndpointDestinationConfiguration`: the HTTP endpoint destination's section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from firehose.config_base import (
    ROLE_ARN_PATTERN,
    BackedUpDestination,
    BufferingHints,
    RetryOptions,
    S3Configuration,
    _alias,
    _explicitly_disabled,
    _Model,
    interval_field,
    size_field,
)
from firehose.processing_config import ProcessingConfiguration
from firehose.retry import RetryPolicy


class HttpEndpointBufferingHints(BufferingHints):
    """The HTTP endpoint's ranges: a request carries at most 64 MiB of record data."""

    size_in_mbs: int = size_field(5, 64)
    interval_in_seconds: int = interval_field(300, 900)


class EndpointConfiguration(_Model):
    """Where requests go. `Url` may be http:// and name any port here (ours: AWS wants https
    on 443); `AccessKey` is sent as a header and shown nowhere else."""

    url: str = Field(min_length=1, max_length=1000, validation_alias=_alias("Url", "url"))
    name: str | None = Field(
        None, min_length=1, max_length=256, validation_alias=_alias("Name", "name")
    )
    access_key: SecretStr | None = Field(
        None, max_length=4096, validation_alias=_alias("AccessKey", "access_key")
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme, _, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


class CommonAttribute(_Model):
    """One `X-Amz-Firehose-Common-Attributes` member."""

    attribute_name: str = Field(
        min_length=1, max_length=256, validation_alias=_alias("AttributeName", "name")
    )
    attribute_value: str = Field(
        max_length=1024, validation_alias=_alias("AttributeValue", "value")
    )


class RequestConfiguration(_Model):
    """How the request body is encoded, and attributes sent with every request."""

    content_encoding: Literal["NONE", "GZIP"] = Field(
        "NONE", validation_alias=_alias("ContentEncoding", "content_encoding")
    )
    common_attributes: list[CommonAttribute] = Field(
        default_factory=list,
        max_length=50,
        validation_alias=_alias("CommonAttributes", "common_attributes"),
    )

    @model_validator(mode="before")
    @classmethod
    def _friendly_encoding(cls, data: Any) -> Any:
        """`content_encoding` takes any letter case; `ContentEncoding` is exact."""
        if isinstance(data, dict) and isinstance(data.get("content_encoding"), str):
            data = {**data, "content_encoding": data["content_encoding"].upper()}
        return data

    def description(self) -> dict[str, Any]:
        described: dict[str, Any] = {"ContentEncoding": self.content_encoding}
        if self.common_attributes:
            described["CommonAttributes"] = [
                {"AttributeName": a.attribute_name, "AttributeValue": a.attribute_value}
                for a in self.common_attributes
            ]
        return described


class HttpEndpointDestination(BackedUpDestination):
    """`HttpEndpointDestinationConfiguration`: one POST per batch, failures (or, with AllData,
    every record) to the `S3Configuration` bucket."""

    section = "HttpEndpointDestinationConfiguration"
    kind = "HttpEndpoint"
    ALL_DATA_MODE = "AllData"
    max_batch_records = 10_000  # records one request may carry

    endpoint_configuration: EndpointConfiguration = Field(
        validation_alias=_alias("EndpointConfiguration", "endpoint")
    )
    buffering_hints: HttpEndpointBufferingHints = Field(
        default_factory=HttpEndpointBufferingHints,
        validation_alias=_alias("BufferingHints", "buffering"),
    )
    request_configuration: RequestConfiguration = Field(
        default_factory=RequestConfiguration,
        validation_alias=_alias("RequestConfiguration", "request"),
    )
    processing_configuration: ProcessingConfiguration | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration", "processing")
    )
    retry_options: RetryOptions = Field(
        default_factory=RetryOptions, validation_alias=_alias("RetryOptions", "retry")
    )
    s3_backup_mode: Literal["FailedDataOnly", "AllData"] = Field(
        "FailedDataOnly", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    s3_configuration: S3Configuration = Field(validation_alias=_alias("S3Configuration", "backup"))
    response_timeout_seconds: float = Field(
        180.0,
        gt=0,
        le=3600,
        validation_alias=_alias("ResponseTimeoutInSeconds", "response_timeout_seconds"),
        description="ours: how long an answer may take; AWS waits 3 minutes",
    )
    # Accepted so that real CreateDeliveryStream bodies load; they change nothing here.
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )
    secrets_manager_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("SecretsManagerConfiguration")
    )

    @model_validator(mode="before")
    @classmethod
    def _friendly_backup_mode(cls, data: Any) -> Any:
        """`backup_mode` takes any letter case; `S3BackupMode` is exact."""
        if isinstance(data, dict) and isinstance(data.get("backup_mode"), str):
            modes = {mode.lower(): mode for mode in ("FailedDataOnly", "AllData")}
            given = data["backup_mode"]
            data = {**data, "backup_mode": modes.get(given.lower(), given)}
        return data

    @field_validator("secrets_manager_configuration")
    @classmethod
    def _no_secrets_manager(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Enabled, the access key would come from Secrets Manager, which is not reachable here.
        if value is not None and not _explicitly_disabled(value):
            raise ValueError(
                "is not supported: give EndpointConfiguration.AccessKey, or set Enabled to false"
            )
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value and not ROLE_ARN_PATTERN.match(value):
            raise ValueError("must look like arn:aws:iam::123456789012:role/<name>")
        return value or None

    def retry_policy(self) -> RetryPolicy:
        """The n-th retry waits min(120 s, 2^n s * a factor in 0.85 to 1.15), within the window."""
        return RetryPolicy(
            deadline_seconds=float(self.retry_options.duration_in_seconds),
            initial_backoff_seconds=2.0,
            max_backoff_seconds=120.0,
            jitter_factors=(0.85, 1.15),
        )

    def description(self, account_id: str) -> dict[str, Any]:
        endpoint = self.endpoint_configuration
        described: dict[str, Any] = {
            "EndpointConfiguration": {"Url": endpoint.url}
            | ({"Name": endpoint.name} if endpoint.name else {}),  # never the AccessKey
            "BufferingHints": {
                "SizeInMBs": self.buffering_hints.size_in_mbs,
                "IntervalInSeconds": self.buffering_hints.interval_in_seconds,
            },
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
            "RequestConfiguration": self.request_configuration.description(),
            "RoleARN": self.role_arn or f"arn:aws:iam::{account_id}:role/firehose-delivery",
            "RetryOptions": {"DurationInSeconds": self.retry_options.duration_in_seconds},
            "S3BackupMode": self.s3_backup_mode,
            "S3DestinationDescription": self.s3_configuration.plain_description(account_id),
        }
        if self.processing_configuration is not None:
            described["ProcessingConfiguration"] = self.processing_configuration.description()
        if self.secrets_manager_configuration is not None:
            described["SecretsManagerConfiguration"] = self.secrets_manager_configuration
        return {"HttpEndpointDestinationDescription": described}
