"""`ExtendedS3DestinationConfiguration`: the extended S3 destination's section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from firehose.compression import CODECS
from firehose.config_base import (
    BIG_BUFFER_DEFAULT_MIB,
    BIG_BUFFER_MIN_MIB,
    DestinationSection,
    FieldProblems,
    S3Configuration,
    _alias,
    _explicitly_disabled,
    _spellings_of,
)
from firehose.format_config import DataFormatConversionConfiguration
from firehose.keys import file_extension_problems, prefix_problems, time_zone_problems
from firehose.partitioning_config import (
    DynamicPartitioningConfiguration,
    enabled_in,
    key_source_problems,
)
from firehose.processing_config import ProcessingConfiguration


class ExtendedS3Destination(S3Configuration, DestinationSection):
    """`ExtendedS3DestinationConfiguration`: the fields this service acts on, the rest accepted."""

    section = "ExtendedS3DestinationConfiguration"
    kind = "S3"
    partition_rules_later = True

    file_extension: str | None = Field(
        None, validation_alias=_alias("FileExtension", "file_extension")
    )
    custom_time_zone: str | None = Field(
        None, validation_alias=_alias("CustomTimeZone", "time_zone")
    )
    processing_configuration: ProcessingConfiguration | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration", "processing")
    )
    data_format_conversion_configuration: DataFormatConversionConfiguration | None = Field(
        None, validation_alias=_alias("DataFormatConversionConfiguration", "format_conversion")
    )
    dynamic_partitioning_configuration: DynamicPartitioningConfiguration | None = Field(
        None,
        validation_alias=_alias("DynamicPartitioningConfiguration", "dynamic_partitioning"),
    )
    # Before S3BackupMode, whose check needs to know whether this one was given and valid.
    s3_backup_configuration: S3Configuration | None = Field(
        None, validation_alias=_alias("S3BackupConfiguration", "backup")
    )
    s3_backup_mode: Literal["Disabled", "Enabled"] = Field(
        "Disabled", validation_alias=_alias("S3BackupMode", "backup_mode")
    )

    @model_validator(mode="before")
    @classmethod
    def _friendly_backup_mode(cls, data: Any) -> Any:
        """`backup_mode` takes any letter case, like `compression`; `S3BackupMode` is exact."""
        if isinstance(data, dict) and isinstance(data.get("backup_mode"), str):
            modes = {mode.lower(): mode for mode in ("Disabled", "Enabled")}
            data = {
                **data,
                "backup_mode": modes.get(data["backup_mode"].lower(), data["backup_mode"]),
            }
        return data

    @model_validator(mode="after")
    def _conversion_rules(self) -> ExtendedS3Destination:
        """Format conversion compresses inside the file, and needs big buffers to be worth it."""
        if self.conversion is None:
            return self
        problems = []
        if self.compression_format != "UNCOMPRESSED":
            problems.append(
                (
                    "CompressionFormat",
                    "must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled: "
                    "the serializer's Compression compresses inside the file",
                )
            )
        if problems:
            raise FieldProblems(problems)
        return self

    @field_validator("file_extension")
    @classmethod
    def _check_extension(cls, value: str | None) -> str | None:
        problems = file_extension_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value or None

    @field_validator("custom_time_zone")
    @classmethod
    def _check_time_zone(cls, value: str | None) -> str | None:
        problems = time_zone_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value or None

    @model_validator(mode="before")
    @classmethod
    def _big_buffer_default(cls, data: Any) -> Any:
        """With format conversion or dynamic partitioning on, SizeInMBs defaults to 128, not 5."""
        if not isinstance(data, dict) or not _spellings_of(cls, "buffering_hints").isdisjoint(data):
            return data
        conversion = [
            data[key]
            for key in _spellings_of(cls, "data_format_conversion_configuration") & data.keys()
        ]
        converting = any(isinstance(c, dict) and not _explicitly_disabled(c) for c in conversion)
        if converting or enabled_in(data):
            default = {"SizeInMBs": BIG_BUFFER_DEFAULT_MIB, "IntervalInSeconds": 300}
            data = {**data, "BufferingHints": default}
        return data

    @model_validator(mode="after")
    def _big_buffer_minimum(self) -> ExtendedS3Destination:
        """Format conversion and dynamic partitioning need buffers of 64 MiB at least."""
        size = self.buffering_hints.size_in_mbs
        needs = [
            name
            for name, on in (
                ("DataFormatConversionConfiguration", self.conversion is not None),
                ("DynamicPartitioningConfiguration", self.partitioned),
            )
            if on
        ]
        if needs and size < BIG_BUFFER_MIN_MIB:
            raise FieldProblems(
                [
                    (
                        "BufferingHints",
                        f"SizeInMBs is {size}: with {' and '.join(needs)} enabled it is "
                        f"{BIG_BUFFER_MIN_MIB} to 128",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _partitioning_rules(self) -> ExtendedS3Destination:
        """The prefix and processors must agree with dynamic partitioning, on or off."""
        problems = prefix_problems(
            self.prefix, self.error_output_prefix, dynamic_partitioning=self.partitioned
        )
        if self.partitioned and not problems:
            problems += key_source_problems(self.prefix, self.processing_configuration)
            if self.buffering_hints.interval_in_seconds == 0:
                problems.append(("BufferingHints", "IntervalInSeconds 0 (zero buffering) is "
                                 "not available with dynamic partitioning"))  # fmt: skip
        if problems:
            raise FieldProblems(problems)
        return self

    @field_validator("s3_backup_mode")
    @classmethod
    def _backup_needs_a_bucket(cls, value: str, info: ValidationInfo) -> str:
        # Absent from info.data when S3BackupConfiguration was given but refused: reported already.
        given = info.data.get("s3_backup_configuration", "refused")
        if value == "Enabled" and given is None:
            raise FieldProblems(
                [("S3BackupConfiguration", "is required when S3BackupMode is Enabled")]
            )
        return value

    @property
    def conversion(self) -> DataFormatConversionConfiguration | None:
        """The format conversion section when it is enabled, else None."""
        section = self.data_format_conversion_configuration
        return section if section is not None and section.enabled else None

    @property
    def extension(self) -> str:
        if self.file_extension:
            return self.file_extension
        if self.conversion is not None:
            return self.conversion.extension
        return CODECS[self.compression_format].extension

    @property
    def key_time_zone(self) -> str | None:
        return self.custom_time_zone

    @property
    def partitioned(self) -> bool:
        """Whether dynamic partitioning is enabled."""
        section = self.dynamic_partitioning_configuration
        return section is not None and section.enabled

    @property
    def backup(self) -> S3Configuration | None:
        """Where source records are backed up: None unless S3BackupMode is Enabled."""
        return self.s3_backup_configuration if self.s3_backup_mode == "Enabled" else None

    def error_location(self) -> S3Configuration:
        return self  # its own bucket, under ErrorOutputPrefix

    def backup_location(self) -> S3Configuration | None:
        return self.backup

    def description(self, account_id: str) -> dict[str, Any]:
        plain = self.plain_description(account_id)
        extended = {**plain, "S3BackupMode": self.s3_backup_mode}
        if self.s3_backup_configuration is not None:
            extended["S3BackupDescription"] = self.s3_backup_configuration.plain_description(
                account_id
            )
        if self.file_extension:
            extended["FileExtension"] = self.file_extension
        if self.custom_time_zone:
            extended["CustomTimeZone"] = self.custom_time_zone
        if self.processing_configuration is not None:
            extended["ProcessingConfiguration"] = self.processing_configuration.description()
        if self.dynamic_partitioning_configuration is not None:
            partitioning = self.dynamic_partitioning_configuration.description()
            extended["DynamicPartitioningConfiguration"] = partitioning
        if self.data_format_conversion_configuration is not None:
            extended["DataFormatConversionConfiguration"] = (
                self.data_format_conversion_configuration.description()
            )
        return {"S3DestinationDescription": plain, "ExtendedS3DestinationDescription": extended}
