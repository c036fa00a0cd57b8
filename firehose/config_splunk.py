"""`SplunkDestinationConfiguration`: the Splunk destination's section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from firehose.config_base import (
    BackedUpDestination,
    BufferingHints,
    FieldProblems,
    RetryOptions,
    S3Configuration,
    _alias,
    _Model,
    interval_field,
    size_field,
)
from firehose.processing_config import ProcessingConfiguration


class SplunkBufferingHints(BufferingHints):
    """Splunk's narrower ranges: at most 5 MiB and 60 seconds."""

    size_in_mbs: int = size_field(5, 5)
    interval_in_seconds: int = interval_field(60, 60)


class SecretsManagerConfiguration(_Model):
    """Where AWS reads the HEC token from instead of `HECToken`: accepted only while disabled."""

    enabled: bool = Field(validation_alias=_alias("Enabled", "enabled"))
    secret_arn: str | None = Field(None, validation_alias=_alias("SecretARN", "secret_arn"))
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))

    @field_validator("enabled")
    @classmethod
    def _not_enabled_yet(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "is not supported by this version yet: set Enabled to false and give HECToken"
            )
        return value


class SplunkConfiguration(BackedUpDestination):
    """`SplunkDestinationConfiguration`: batches to a Splunk HTTP Event Collector (HEC)."""

    section = "SplunkDestinationConfiguration"
    kind = "Splunk"
    ALL_DATA_MODE = "AllEvents"

    hec_endpoint: str = Field(
        max_length=2048, validation_alias=_alias("HECEndpoint", "hec_endpoint")
    )
    hec_endpoint_type: Literal["Raw", "Event"] = Field(
        validation_alias=_alias("HECEndpointType", "hec_endpoint_type")
    )
    # A SecretStr so that no repr, log line or description ever shows it.
    hec_token: SecretStr | None = Field(
        None, max_length=2048, validation_alias=_alias("HECToken", "hec_token")
    )
    hec_acknowledgment_timeout_in_seconds: int = Field(
        180,
        ge=180,
        le=600,
        strict=True,
        validation_alias=_alias(
            "HECAcknowledgmentTimeoutInSeconds", "hec_acknowledgment_timeout_seconds"
        ),
    )
    retry_options: RetryOptions = Field(
        default_factory=RetryOptions, validation_alias=_alias("RetryOptions", "retry")
    )
    s3_backup_mode: Literal["FailedEventsOnly", "AllEvents"] = Field(
        "FailedEventsOnly", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    s3_configuration: S3Configuration = Field(
        validation_alias=_alias("S3Configuration", "s3_configuration")
    )
    buffering_hints: SplunkBufferingHints = Field(
        default_factory=SplunkBufferingHints,
        validation_alias=_alias("BufferingHints", "buffering"),
    )
    processing_configuration: ProcessingConfiguration | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration", "processing")
    )
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )
    secrets_manager_configuration: SecretsManagerConfiguration | None = Field(
        None, validation_alias=_alias("SecretsManagerConfiguration")
    )

    @field_validator("hec_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://), e.g. https://hec.example:8088")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _token_given(self) -> SplunkConfiguration:
        if self.hec_token is None or not self.hec_token.get_secret_value():
            raise FieldProblems([("HECToken", "is required: the HEC token to send with")])
        return self

    @property
    def token(self) -> str:
        assert self.hec_token is not None  # checked by the validator
        return self.hec_token.get_secret_value()

    def description(self, account_id: str) -> dict[str, Any]:
        """`SplunkDestinationDescription`; the token is never shown."""
        splunk: dict[str, Any] = {
            "HECEndpoint": self.hec_endpoint,
            "HECEndpointType": self.hec_endpoint_type,
            "HECAcknowledgmentTimeoutInSeconds": self.hec_acknowledgment_timeout_in_seconds,
            "S3BackupMode": self.s3_backup_mode,
            "S3DestinationDescription": self.s3_configuration.plain_description(account_id),
            "BufferingHints": {
                "SizeInMBs": self.buffering_hints.size_in_mbs,
                "IntervalInSeconds": self.buffering_hints.interval_in_seconds,
            },
            "RetryOptions": {"DurationInSeconds": self.retry_options.duration_in_seconds},
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
        }
        if self.processing_configuration is not None:
            splunk["ProcessingConfiguration"] = self.processing_configuration.description()
        return {"SplunkDestinationDescription": splunk}
