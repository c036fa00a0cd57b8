"""`RedshiftDestinationConfiguration`: the Redshift destination's section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from firehose.config_base import (
    ROLE_ARN_PATTERN,
    BackedUpDestination,
    BufferingHints,
    FieldProblems,
    RetryOptions,
    S3Configuration,
    _alias,
    duration_field,
)
from firehose.processing_config import ProcessingConfiguration
from firehose.redshift_config import (
    CopyCommand,
    Warehouse,
    has_option,
    parse_jdbc_url,
    postgres_copy,
)
from firehose.retry import RetryPolicy


class RedshiftS3Configuration(S3Configuration):
    """Redshift's intermediate bucket: staged objects and manifests under a fixed `Prefix`
    (no expressions, no ErrorOutputPrefix), compressed only as COPY can read them."""

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if "!{" in value:
            raise ValueError("must not hold !{...} expressions in Redshift's intermediate bucket")
        return value

    @field_validator("error_output_prefix")
    @classmethod
    def _no_error_prefix(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("is not used in Redshift's intermediate bucket: leave it out")
        return None

    @field_validator("compression_format")
    @classmethod
    def _copy_can_read(cls, value: str) -> str:
        if value not in ("UNCOMPRESSED", "GZIP"):
            raise ValueError("must be UNCOMPRESSED or GZIP for Redshift's intermediate bucket")
        return value


class RedshiftRetryOptions(RetryOptions):
    """Redshift's `RetryOptions`: the same range, a window of an hour by default."""

    duration_in_seconds: int = duration_field(3600)


class RedshiftConfiguration(BackedUpDestination):
    """`RedshiftDestinationConfiguration`: batches staged in S3, then loaded by COPY into
    Amazon Redshift, or into PostgreSQL for a `jdbc:postgresql://` URL (ours).

    Its failures are no error records: a load failing past the retry window leaves its manifest
    under `errors/` of the intermediate bucket, so the destination keeps the window itself.
    """

    section = "RedshiftDestinationConfiguration"
    kind = "Redshift"
    ALL_DATA_MODE = "Enabled"
    backs_up_processed = False  # S3BackupMode Enabled backs up the records as they came

    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    cluster_jdbcurl: str = Field(
        validation_alias=_alias("ClusterJDBCURL", "cluster_jdbc_url", "jdbc_url")
    )
    copy_command: CopyCommand = Field(validation_alias=_alias("CopyCommand", "copy_command"))
    username: str = Field(
        min_length=1, max_length=512, validation_alias=_alias("Username", "username")
    )
    # A SecretStr so that no repr, log line or description ever shows it.
    password: SecretStr = Field(
        min_length=1, max_length=512, validation_alias=_alias("Password", "password")
    )
    retry_options: RedshiftRetryOptions = Field(
        default_factory=RedshiftRetryOptions, validation_alias=_alias("RetryOptions", "retry")
    )
    s3_configuration: RedshiftS3Configuration = Field(
        validation_alias=_alias("S3Configuration", "s3_configuration")
    )
    processing_configuration: ProcessingConfiguration | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration", "processing")
    )
    s3_backup_configuration: S3Configuration | None = Field(
        None, validation_alias=_alias("S3BackupConfiguration", "backup")
    )
    s3_backup_mode: Literal["Disabled", "Enabled"] = Field(
        "Disabled", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value and not ROLE_ARN_PATTERN.match(value):
            raise ValueError("must look like arn:aws:iam::123456789012:role/<name>")
        return value or None

    @field_validator("cluster_jdbcurl")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parse_jdbc_url(value)
        return value

    @field_validator("s3_backup_mode")
    @classmethod
    def _backup_needs_a_bucket(cls, value: str, info: ValidationInfo) -> str:
        given = info.data.get("s3_backup_configuration", "refused")
        if value == "Enabled" and given is None:
            raise FieldProblems(
                [("S3BackupConfiguration", "is required when S3BackupMode is Enabled")]
            )
        return value

    @model_validator(mode="after")
    def _warehouse_rules(self) -> RedshiftConfiguration:
        """Redshift reads S3 with a role; PostgreSQL must understand every CopyOptions word."""
        options = self.copy_command.copy_options
        if self.warehouse.kind == "redshift":
            if self.role_arn is None:
                raise FieldProblems([("RoleARN", "is required: COPY reads S3 with this role")])
            return self
        try:
            copy = postgres_copy(options)
        except ValueError as exc:
            raise FieldProblems([("CopyCommand", f"CopyOptions: {exc}")]) from None
        if copy.gzip and self.s3_configuration.compression_format != "GZIP":
            raise FieldProblems(
                [("CopyCommand", "CopyOptions: GZIP needs S3Configuration CompressionFormat GZIP")]
            )
        return self

    @property  # type: ignore[misc]  # a property where the other kinds have a field
    def buffering_hints(self) -> BufferingHints:
        """Redshift buffers by its intermediate bucket's hints."""
        return self.s3_configuration.buffering_hints

    @property
    def warehouse(self) -> Warehouse:
        return parse_jdbc_url(self.cluster_jdbcurl)

    @property
    def staged_gzip(self) -> bool:
        """Whether staged objects are gzipped: the COPY must then say GZIP."""
        return self.s3_configuration.compression_format == "GZIP"

    @property
    def copy_says_gzip(self) -> bool:
        return has_option(self.copy_command.copy_options, "GZIP")

    def retry_policy(self) -> RetryPolicy:
        """Retry until taken: the destination ends a load's window itself, filing its manifest
        under errors/ instead of handing records to the error output."""
        return RetryPolicy()

    def backup_location(self) -> S3Configuration | None:
        return self.s3_backup_configuration if self.s3_backup_mode == "Enabled" else None

    def description(self, account_id: str) -> dict[str, Any]:
        """`RedshiftDestinationDescription`; the password is never shown."""
        role = self.role_arn or f"arn:aws:iam::{account_id}:role/firehose-delivery"
        redshift: dict[str, Any] = {
            "RoleARN": role,
            "ClusterJDBCURL": self.cluster_jdbcurl,
            "CopyCommand": self.copy_command.description(),
            "Username": self.username,
            "RetryOptions": {"DurationInSeconds": self.retry_options.duration_in_seconds},
            "S3DestinationDescription": self.s3_configuration.plain_description(account_id),
            "S3BackupMode": self.s3_backup_mode,
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
        }
        if self.s3_backup_configuration is not None:
            redshift["S3BackupDescription"] = self.s3_backup_configuration.plain_description(
                account_id
            )
        if self.processing_configuration is not None:
            redshift["ProcessingConfiguration"] = self.processing_configuration.description()
        return {"RedshiftDestinationDescription": redshift}
