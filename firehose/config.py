"""Delivery-stream definitions: pydantic models and YAML loading.

A file may hold a `CreateDeliveryStream` request body as is (PascalCase API names) or the
friendlier snake_case form; both validate into the same models:

    name: clicks                      # DeliveryStreamName
    s3:                               # ExtendedS3DestinationConfiguration
      bucket: my-bucket               # or bucket_arn / BucketARN
      prefix: clicks/
      buffering: {size_mib: 5, interval_seconds: 60}
      compression: gzip
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from firehose.compression import CODECS
from firehose.keys import file_extension_problems, prefix_problems

STREAM_NAME_PATTERN = r"^[a-zA-Z0-9_.-]{1,64}$"
BUCKET_ARN_PATTERN = re.compile(r"^arn:[^:]*:s3:::([\w.\-]{1,255})$")
UNSUPPORTED_DESTINATIONS = (
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BufferingHints(_Model):
    """Flush at `size_in_mbs` MiB or when the oldest record has waited `interval_in_seconds`."""

    size_in_mbs: int = Field(5, ge=1, le=128, validation_alias=_alias("SizeInMBs", "size_mib"))
    interval_in_seconds: int = Field(
        300, ge=0, le=900, validation_alias=_alias("IntervalInSeconds", "interval_seconds")
    )

    @model_validator(mode="before")
    @classmethod
    def _both_or_neither(cls, data: Any) -> Any:
        if isinstance(data, dict):
            has_size = "SizeInMBs" in data or "size_mib" in data
            has_interval = "IntervalInSeconds" in data or "interval_seconds" in data
            if has_size != has_interval:
                raise ValueError("SizeInMBs and IntervalInSeconds must be given together")
        return data

    @property
    def size_bytes(self) -> int:
        return self.size_in_mbs * 1024 * 1024


def _enabled(section: Any) -> bool:
    return isinstance(section, dict) and section.get("Enabled", section.get("enabled")) in (
        True,
        "true",
        "True",
    )


class ExtendedS3Destination(_Model):
    """`ExtendedS3DestinationConfiguration`: the fields this service acts on, the rest accepted."""

    bucket_arn: str = Field(validation_alias=_alias("BucketARN", "bucket_arn"))
    prefix: str = Field("", max_length=1024, validation_alias=_alias("Prefix", "prefix"))
    error_output_prefix: str | None = Field(
        None, max_length=1024, validation_alias=_alias("ErrorOutputPrefix", "error_output_prefix")
    )
    buffering_hints: BufferingHints = Field(
        default_factory=BufferingHints, validation_alias=_alias("BufferingHints", "buffering")
    )
    compression_format: str = Field(
        "UNCOMPRESSED", validation_alias=_alias("CompressionFormat", "compression")
    )
    file_extension: str | None = Field(
        None, validation_alias=_alias("FileExtension", "file_extension")
    )
    custom_time_zone: str | None = Field(
        None, validation_alias=_alias("CustomTimeZone", "time_zone")
    )
    endpoint_url: str | None = Field(
        None,
        validation_alias=_alias("EndpointURL", "endpoint_url"),
        description="ours: http(s):// for an S3-compatible store, file://DIR for a local folder",
    )
    # Accepted so that real CreateDeliveryStream bodies load; they change nothing here.
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    encryption_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("EncryptionConfiguration")
    )
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )
    # Accepted only while disabled: turning them on changes the output, which is not built yet.
    processing_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration")
    )
    data_format_conversion_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DataFormatConversionConfiguration")
    )
    dynamic_partitioning_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DynamicPartitioningConfiguration")
    )
    s3_backup_mode: Literal["Disabled"] = Field(
        "Disabled", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    s3_backup_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("S3BackupConfiguration")
    )

    @model_validator(mode="before")
    @classmethod
    def _bucket_name_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "bucket" in data:
            data = dict(data)
            data["bucket_arn"] = f"arn:aws:s3:::{data.pop('bucket')}"
        return data

    @field_validator("bucket_arn")
    @classmethod
    def _check_bucket_arn(cls, value: str) -> str:
        if not BUCKET_ARN_PATTERN.match(value):
            raise ValueError("must look like arn:aws:s3:::<bucket>")
        return value

    @field_validator("compression_format", mode="before")
    @classmethod
    def _check_compression(cls, value: Any) -> Any:
        by_lower = {name.lower(): name for name in CODECS}
        if isinstance(value, str) and value.lower() in by_lower:
            return by_lower[value.lower()]
        raise ValueError(f"must be one of {', '.join(CODECS)}")

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
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("must be an IANA time zone name such as Asia/Tokyo") from None
        return value or None

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://", "file://")):
            raise ValueError("must start with http://, https:// or file://")
        return value or None

    @field_validator(
        "processing_configuration",
        "data_format_conversion_configuration",
        "dynamic_partitioning_configuration",
    )
    @classmethod
    def _not_enabled_yet(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if _enabled(value):
            raise ValueError("is not supported by this version yet: set Enabled to false")
        return value

    @model_validator(mode="after")
    def _check_prefixes(self) -> ExtendedS3Destination:
        problems = prefix_problems(self.prefix, self.error_output_prefix)
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        return self

    @property
    def bucket(self) -> str:
        match = BUCKET_ARN_PATTERN.match(self.bucket_arn)
        assert match is not None  # checked by the validator
        return match.group(1)

    @property
    def extension(self) -> str:
        return self.file_extension or CODECS[self.compression_format].extension


class DeliveryStreamConfig(_Model):
    """One delivery stream: a `CreateDeliveryStream` body, or its snake_case form."""

    name: str = Field(
        pattern=STREAM_NAME_PATTERN, validation_alias=_alias("DeliveryStreamName", "name")
    )
    type: Literal["DirectPut"] = Field(
        "DirectPut", validation_alias=_alias("DeliveryStreamType", "type")
    )
    s3: ExtendedS3Destination = Field(
        validation_alias=_alias(
            "ExtendedS3DestinationConfiguration", "S3DestinationConfiguration", "s3"
        )
    )
    tags: list[dict[str, str]] | None = Field(None, validation_alias=_alias("Tags", "tags"))
    direct_put_source_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DirectPutSourceConfiguration")
    )
    encryption: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DeliveryStreamEncryptionConfigurationInput")
    )

    @model_validator(mode="before")
    @classmethod
    def _one_supported_destination(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in UNSUPPORTED_DESTINATIONS:
                if key in data:
                    raise ValueError(
                        f"{key} is not supported by this version yet; "
                        "use ExtendedS3DestinationConfiguration"
                    )
        return data


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, said the way a user can act on it."""

    file: str
    field: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        if self.value is _MISSING:
            return f"{where}: {self.allowed}"
        return f"{where}: got {self.value!r}, {self.allowed}"


_MISSING = object()


class ConfigError(Exception):
    """Config files that cannot be used; `problems` lists every one found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _allowed(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message.replace("Input should be", "must be")


def _problems_from(file: str, error: PydanticValidationError) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        if item["type"] == "missing":
            problems.append(ConfigProblem(file, field, _MISSING, "is required"))
        elif item["type"] == "extra_forbidden":
            problems.append(ConfigProblem(file, field, _MISSING, "is not a known field"))
        else:
            value = item.get("input", _MISSING)
            if isinstance(value, dict):
                value = _MISSING
            problems.append(ConfigProblem(file, field, value, _allowed(item["msg"])))
    return problems


def config_files(path: Path) -> list[Path]:
    """The YAML files a `--config` path names: the file itself, or a folder's *.yaml / *.yml."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def _documents(file: Path) -> Iterable[Any]:
    with file.open("rb") as handle:
        yield from yaml.safe_load_all(handle)


def load_configs(path: Path) -> list[DeliveryStreamConfig]:
    """Every delivery stream defined under `path`; raises ConfigError naming every problem."""
    problems: list[ConfigProblem] = []
    streams: list[DeliveryStreamConfig] = []
    if not path.exists():
        raise ConfigError([ConfigProblem(str(path), "", _MISSING, "does not exist")])
    files = config_files(path)
    if not files:
        problems.append(ConfigProblem(str(path), "", _MISSING, "holds no .yaml or .yml file"))
    seen: dict[str, str] = {}
    for file in files:
        try:
            documents = [doc for doc in _documents(file) if doc is not None]
        except (OSError, yaml.YAMLError) as exc:
            problems.append(ConfigProblem(str(file), "", _MISSING, f"cannot be read: {exc}"))
            continue
        for document in documents:
            if not isinstance(document, dict):
                problems.append(
                    ConfigProblem(str(file), "", _MISSING, "must be a mapping of stream fields")
                )
                continue
            try:
                stream = DeliveryStreamConfig.model_validate(document)
            except PydanticValidationError as exc:
                problems.extend(_problems_from(str(file), exc))
                continue
            if stream.name in seen:
                problems.append(
                    ConfigProblem(
                        str(file),
                        "DeliveryStreamName",
                        stream.name,
                        f"already defined in {seen[stream.name]}",
                    )
                )
                continue
            seen[stream.name] = str(file)
            streams.append(stream)
    if problems:
        raise ConfigError(problems)
    return streams
