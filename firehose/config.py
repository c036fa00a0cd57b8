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
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from firehose.compression import CODECS, UnknownCompressionFormat, get_codec
from firehose.format_config import DataFormatConversionConfiguration
from firehose.keys import file_extension_problems, prefix_problems, time_zone_problems
from firehose.partitioning_config import (
    DynamicPartitioningConfiguration,
    enabled_in,
    key_source_problems,
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

BUCKET_ARN_PATTERN = re.compile(r"^arn:[^:]*:s3:::([\w.\-]{1,255})$", re.ASCII)
ROLE_ARN_PATTERN = re.compile(r"^arn:.*:iam::\d{12}:role/\S+$", re.ASCII)
# Where objects can go: an S3-compatible store, or a local folder (ours).
ENDPOINT_SCHEMES = ("http://", "https://", "file://")
UNSUPPORTED_DESTINATIONS = (
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
)
UNSUPPORTED_SOURCES = (
    "MSKSourceConfiguration",
    "DatabaseSourceConfiguration",
)
# Keys whose values are secrets: config problems never echo them.
SECRET_KEYS = frozenset(
    {"HECToken", "hec_token", "AccessKey", "access_key", "Password", "password"}
)
# The snake_case form takes a CompressionFormat in any letter case.
_CODECS_BY_LOWER = {name.lower(): name for name in CODECS}
# Friendly keys that are not an alias of one field: key -> the API name of the field it fills.
_SHORTHANDS = {"bucket": "BucketARN"}
# The API model's [a-zA-Z0-9_.-]+ for DeliveryStreamName, as a set: the one definition.
STREAM_NAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
)


def checked_endpoint_url(value: str | None) -> str | None:
    """`value` if it is an endpoint objects can go to, None if unset; else ValueError.

    The one check for a stream's EndpointURL and for the service-wide override.
    """
    if value and not value.startswith(ENDPOINT_SCHEMES):
        raise ValueError("must start with http://, https:// or file://")
    return value or None


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class FieldProblems(ValueError):
    """Problems a check found in named fields of the model being validated.

    Each is `(field, message)`, `field` being the API name (`Prefix`); the loader reports each one
    under that field, spelled as the user spelled it.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems = problems


# Format conversion and dynamic partitioning buffer more: SizeInMBs 64 to 128, default 128.
BIG_BUFFER_MIN_MIB = 64
BIG_BUFFER_DEFAULT_MIB = 128


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BufferingHints(_Model):
    """Flush at `size_in_mbs` MiB or when the oldest record has waited `interval_in_seconds`."""

    size_in_mbs: int = Field(
        5, ge=1, le=128, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )
    interval_in_seconds: int = Field(
        300,
        ge=0,
        le=900,
        strict=True,
        validation_alias=_alias("IntervalInSeconds", "interval_seconds"),
    )

    @model_validator(mode="before")
    @classmethod
    def _both_or_neither(cls, data: Any) -> Any:
        if isinstance(data, dict):
            has_size = not _spellings_of(cls, "size_in_mbs").isdisjoint(data)
            has_interval = not _spellings_of(cls, "interval_in_seconds").isdisjoint(data)
            if has_size and not has_interval:
                raise FieldProblems(
                    [("IntervalInSeconds", "is required when SizeInMBs is given: give both")]
                )
            if has_interval and not has_size:
                raise FieldProblems(
                    [("SizeInMBs", "is required when IntervalInSeconds is given: give both")]
                )
        return data

    @property
    def size_bytes(self) -> int:
        return self.size_in_mbs * 1024 * 1024


def _explicitly_disabled(section: Any) -> bool:
    """True only for `Enabled: false`: AWS's model turns a section without `Enabled` on."""
    flag = section.get("Enabled", section.get("enabled")) if isinstance(section, dict) else None
    return flag in (False, "false", "False")


class DestinationSection(_Model):
    """What every destination configuration of the API has: the stream reads only this.

    Each kind states its API section name, its metric name part, its own buffering ranges (by
    giving `buffering_hints` its own model), its retry policy and its description.
    """

    section: ClassVar[str]  # its CreateDeliveryStream member: ExtendedS3DestinationConfiguration
    kind: ClassVar[str]  # the Firehose metric name part: DeliveryTo<kind>.Records
    # What the backup bucket gets: the records as they came (S3's source-record backup), or as
    # delivered (the other kinds' AllData modes).
    backs_up_processed: ClassVar[bool] = False
    # The most records one batch may hold, for kinds whose requests have a cap; None: no cap.
    max_batch_records: ClassVar[int | None] = None

    if TYPE_CHECKING:  # each kind declares them, with its own ranges, where its API puts them
        buffering_hints: BufferingHints
        processing_configuration: ProcessingConfiguration | None

    def retry_policy(self) -> RetryPolicy:
        """Retry until taken: S3's contract. Kinds with `RetryOptions` give it a deadline."""
        return RetryPolicy()

    def description(self, account_id: str) -> dict[str, Any]:
        """Its entry of `DescribeDeliveryStream`'s `Destinations`, without `DestinationId`."""
        raise NotImplementedError

    def error_location(self) -> S3Configuration:
        """Where records it gives up on are filed (under that location's error prefix)."""
        raise NotImplementedError

    def backup_location(self) -> S3Configuration | None:
        """Where every record is also written (S3BackupMode Enabled / AllData), or None."""
        return None


class S3Configuration(_Model):
    """The plain S3 destination shape (`S3DestinationConfiguration`): a bucket, its prefixes,
    buffering and compression.

    The extended S3 destination builds on it; on its own it is the extended destination's
    `S3BackupConfiguration` (and, for the other kinds, their `S3Configuration` backup bucket).
    """

    # True where dynamic partitioning may be on: the prefix rules that depend on it are then
    # checked once the whole section is read.
    partition_rules_later: ClassVar[bool] = False

    bucket_arn: str = Field(validation_alias=_alias("BucketARN", "bucket_arn"))
    prefix: str = Field("", validation_alias=_alias("Prefix", "prefix"))
    # Validated even when absent: whether it is required depends on Prefix.
    error_output_prefix: str | None = Field(
        None,
        validate_default=True,
        validation_alias=_alias("ErrorOutputPrefix", "error_output_prefix"),
    )
    buffering_hints: BufferingHints = Field(
        default_factory=BufferingHints, validation_alias=_alias("BufferingHints", "buffering")
    )
    compression_format: str = Field(
        "UNCOMPRESSED", validation_alias=_alias("CompressionFormat", "compression")
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

    @model_validator(mode="before")
    @classmethod
    def _friendly_shorthands(cls, data: Any) -> Any:
        """`bucket: NAME` fills BucketARN; `compression` takes any letter case (the API's
        `CompressionFormat` keeps the API's exact spelling)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # Given together with BucketARN, `bucket` stays put and is reported as a second name.
        if "bucket" in data and (_spellings_of(cls, "bucket_arn") - {"bucket"}).isdisjoint(data):
            bucket = data.pop("bucket")
            data["bucket_arn"] = f"arn:aws:s3:::{bucket}" if isinstance(bucket, str) else bucket
        for key in _spellings_of(cls, "compression_format") - {"CompressionFormat"}:
            if isinstance(data.get(key), str) and data[key].lower() in _CODECS_BY_LOWER:
                data[key] = _CODECS_BY_LOWER[data[key].lower()]
        return data

    @field_validator("bucket_arn")
    @classmethod
    def _check_bucket_arn(cls, value: str) -> str:
        if not BUCKET_ARN_PATTERN.match(value):
            raise ValueError(
                "must look like arn:aws:s3:::<bucket>, the bucket name being 1 to 255 of "
                "a-z A-Z 0-9 _ . -"
            )
        return value

    @field_validator("error_output_prefix")
    @classmethod
    def _check_prefixes(cls, value: str | None, info: ValidationInfo) -> str | None:
        prefix = info.data.get("prefix")
        if prefix is None:  # Prefix itself was refused; that is reported already
            return value
        later = None if cls.partition_rules_later else False
        problems = prefix_problems(prefix, value, dynamic_partitioning=later)
        if problems:
            raise FieldProblems(problems)
        return value

    @field_validator("compression_format")
    @classmethod
    def _check_compression(cls, value: str) -> str:
        try:
            get_codec(value)
        except UnknownCompressionFormat as exc:
            raise exc.problem from None
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value and not ROLE_ARN_PATTERN.match(value):
            raise ValueError("must look like arn:aws:iam::123456789012:role/<name>")
        return value or None

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return checked_endpoint_url(value)

    @property
    def bucket(self) -> str:
        match = BUCKET_ARN_PATTERN.match(self.bucket_arn)
        assert match is not None  # checked by the validator
        return match.group(1)

    @property
    def extension(self) -> str:
        """The object name suffix: the codec's (the plain shape has no FileExtension)."""
        return CODECS[self.compression_format].extension

    @property
    def key_time_zone(self) -> str | None:
        """The zone of the timestamps in keys: UTC (the plain shape has no CustomTimeZone)."""
        return None

    def plain_description(self, account_id: str) -> dict[str, Any]:
        """`S3DestinationDescription`: the members the plain S3 destination also has."""
        plain: dict[str, Any] = {
            "RoleARN": self.role_arn or f"arn:aws:iam::{account_id}:role/firehose-delivery",
            "BucketARN": self.bucket_arn,
            "Prefix": self.prefix,
            "BufferingHints": {
                "SizeInMBs": self.buffering_hints.size_in_mbs,
                "IntervalInSeconds": self.buffering_hints.interval_in_seconds,
            },
            "CompressionFormat": self.compression_format,
            "EncryptionConfiguration": self.encryption_configuration
            or {"NoEncryptionConfig": "NoEncryption"},
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
        }
        if self.error_output_prefix:
            plain["ErrorOutputPrefix"] = self.error_output_prefix
        return plain


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


class RetryOptions(_Model):
    """`RetryOptions` of the non-S3 destinations: the retry window, from the first attempt."""

    duration_in_seconds: int = Field(
        300,
        ge=0,
        le=7200,
        strict=True,
        validation_alias=_alias("DurationInSeconds", "duration_seconds"),
    )


class BackedUpDestination(DestinationSection):
    """The members the non-S3 kinds share: a retry window, and an S3 bucket (`S3Configuration`)
    that takes the records they give up on, or every record in their AllData mode.

    A kind names its all-data `S3BackupMode` value in `ALL_DATA_MODE` and declares its own
    `s3_backup_mode` field with its API's values and default.
    """

    ALL_DATA_MODE: ClassVar[str]
    backs_up_processed = True

    if TYPE_CHECKING:
        retry_options: RetryOptions
        s3_configuration: S3Configuration
        s3_backup_mode: str

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(deadline_seconds=float(self.retry_options.duration_in_seconds))

    def error_location(self) -> S3Configuration:
        return self.s3_configuration

    def backup_location(self) -> S3Configuration | None:
        return self.s3_configuration if self.s3_backup_mode == self.ALL_DATA_MODE else None


class OpenSearchBufferingHints(BufferingHints):
    """OpenSearch's ranges: 1 to 100 MiB (default 5), 0 to 900 seconds (default 300)."""

    size_in_mbs: int = Field(
        5, ge=1, le=100, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )


class DocumentIdOptions(_Model):
    """Whether documents get a Firehose id (a retry overwrites) or one the cluster picks."""

    default_document_id_format: Literal["FIREHOSE_DEFAULT", "NO_DOCUMENT_ID"] = Field(
        validation_alias=_alias("DefaultDocumentIdFormat", "default_document_id_format")
    )


# Characters OpenSearch refuses in an index name, besides upper case letters.
_INDEX_NAME_FORBIDDEN = frozenset('\\/*?"<>| ,#:')


class OpenSearchConfiguration(BackedUpDestination):
    """`AmazonopensearchserviceDestinationConfiguration`: batches as `_bulk` requests to an
    OpenSearch (or Elasticsearch) cluster at `ClusterEndpoint`.

    `DomainARN` is accepted, but an ARN names an AWS domain this service cannot look up: the
    endpoint must be given. Ours: basic auth and TLS settings for self-hosted clusters.
    """

    section = "AmazonopensearchserviceDestinationConfiguration"
    kind = "AmazonOpenSearchService"
    ALL_DATA_MODE = "AllDocuments"
    description_key: ClassVar[str] = "AmazonopensearchserviceDestinationDescription"

    domain_arn: str | None = Field(None, validation_alias=_alias("DomainARN", "domain_arn"))
    cluster_endpoint: str | None = Field(
        None, max_length=512, validation_alias=_alias("ClusterEndpoint", "cluster_endpoint")
    )
    index_name: str = Field(
        min_length=1, max_length=80, validation_alias=_alias("IndexName", "index_name")
    )
    type_name: str | None = Field(
        None, max_length=100, validation_alias=_alias("TypeName", "type_name")
    )
    index_rotation_period: Literal["NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"] = (
        Field("OneDay", validation_alias=_alias("IndexRotationPeriod", "index_rotation_period"))
    )
    buffering_hints: OpenSearchBufferingHints = Field(
        default_factory=OpenSearchBufferingHints,
        validation_alias=_alias("BufferingHints", "buffering"),
    )
    retry_options: RetryOptions = Field(
        default_factory=RetryOptions, validation_alias=_alias("RetryOptions", "retry")
    )
    s3_backup_mode: Literal["FailedDocumentsOnly", "AllDocuments"] = Field(
        "FailedDocumentsOnly", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    s3_configuration: S3Configuration = Field(
        validation_alias=_alias("S3Configuration", "s3_configuration")
    )
    document_id_options: DocumentIdOptions | None = Field(
        None, validation_alias=_alias("DocumentIdOptions", "document_id_options")
    )
    processing_configuration: ProcessingConfiguration | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration", "processing")
    )
    # Accepted so that real CreateDeliveryStream bodies load; they change nothing here.
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )
    vpc_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("VpcConfiguration")
    )
    # Ours, for self-hosted clusters. A SecretStr so that no repr, log or description shows it.
    username: str | None = Field(None, validation_alias=_alias("Username", "username"))
    password: SecretStr | None = Field(None, validation_alias=_alias("Password", "password"))
    verify_tls: bool = Field(True, validation_alias=_alias("VerifyTLS", "verify_tls"))
    ca_file: str | None = Field(None, validation_alias=_alias("CAFile", "ca_file"))

    @field_validator("cluster_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://), e.g. https://search:9200")
        return value.rstrip("/") if value else None

    @field_validator("index_name")
    @classmethod
    def _check_index_name(cls, value: str) -> str:
        bad = sorted(set(value) & _INDEX_NAME_FORBIDDEN)
        if bad or value != value.lower() or value.startswith(("_", "-", "+")):
            raise ValueError(
                "must be lower case, not start with _ - or +, and hold none of "
                '\\ / * ? " < > | , # : or spaces'
            )
        return value

    @field_validator("type_name")
    @classmethod
    def _empty_type_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _endpoint_given(self) -> OpenSearchConfiguration:
        problems: list[tuple[str, str]] = []
        if self.cluster_endpoint is None:
            reason = (
                "is required here: a DomainARN names an AWS domain this service cannot look "
                "up; give the cluster's URL"
                if self.domain_arn
                else "is required: the cluster's URL, e.g. https://search.example.com:9200"
            )
            problems.append(("ClusterEndpoint", reason))
        if self.password is not None and not self.username:
            problems.append(("Username", "is required when Password is given"))
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def document_ids(self) -> bool:
        """Whether documents get Firehose's ids (FIREHOSE_DEFAULT, the default)."""
        options = self.document_id_options
        return options is None or options.default_document_id_format == "FIREHOSE_DEFAULT"

    @property
    def endpoint(self) -> str:
        assert self.cluster_endpoint is not None  # checked by the validator
        return self.cluster_endpoint

    def description(self, account_id: str) -> dict[str, Any]:
        """Its `…DestinationDescription`; credentials and our TLS settings are not shown."""
        shown: dict[str, Any] = {
            "RoleARN": self.role_arn or f"arn:aws:iam::{account_id}:role/firehose-delivery",
            "ClusterEndpoint": self.endpoint,
            "IndexName": self.index_name,
            "IndexRotationPeriod": self.index_rotation_period,
            "BufferingHints": {
                "SizeInMBs": self.buffering_hints.size_in_mbs,
                "IntervalInSeconds": self.buffering_hints.interval_in_seconds,
            },
            "RetryOptions": {"DurationInSeconds": self.retry_options.duration_in_seconds},
            "S3BackupMode": self.s3_backup_mode,
            "S3DestinationDescription": self.s3_configuration.plain_description(account_id),
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
            "DocumentIdOptions": {
                "DefaultDocumentIdFormat": "FIREHOSE_DEFAULT"
                if self.document_ids
                else "NO_DOCUMENT_ID"
            },
        }
        if self.domain_arn:
            shown["DomainARN"] = self.domain_arn
        if self.type_name:
            shown["TypeName"] = self.type_name
        if self.processing_configuration is not None:
            shown["ProcessingConfiguration"] = self.processing_configuration.description()
        if self.vpc_configuration is not None:
            shown["VpcConfigurationDescription"] = self.vpc_configuration
        return {self.description_key: shown}


class ElasticsearchConfiguration(OpenSearchConfiguration):
    """`ElasticsearchDestinationConfiguration`: the older name of the same shape."""

    section = "ElasticsearchDestinationConfiguration"
    kind = "Elasticsearch"
    description_key = "ElasticsearchDestinationDescription"


class SplunkBufferingHints(BufferingHints):
    """Splunk's narrower ranges: at most 5 MiB and 60 seconds."""

    size_in_mbs: int = Field(
        5, ge=1, le=5, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )
    interval_in_seconds: int = Field(
        60,
        ge=0,
        le=60,
        strict=True,
        validation_alias=_alias("IntervalInSeconds", "interval_seconds"),
    )


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


class HttpEndpointBufferingHints(BufferingHints):
    """The HTTP endpoint's ranges: a request carries at most 64 MiB of record data."""

    size_in_mbs: int = Field(
        5, ge=1, le=64, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )
    interval_in_seconds: int = Field(
        300,
        ge=0,
        le=900,
        strict=True,
        validation_alias=_alias("IntervalInSeconds", "interval_seconds"),
    )


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


KINESIS_STREAM_ARN_PATTERN = re.compile(
    r"^arn:[^:]+:kinesis:([a-z0-9-]+):(\d{12}):stream/([a-zA-Z0-9_.-]{1,128})$", re.ASCII
)


class KinesisStreamSource(_Model):
    """`KinesisStreamSourceConfiguration`: the data stream a KinesisStreamAsSource stream reads."""

    kinesis_stream_arn: str = Field(
        validation_alias=_alias("KinesisStreamARN", "stream_arn", "kinesis_stream_arn")
    )
    role_arn: str = Field(validation_alias=_alias("RoleARN", "role_arn"))

    @field_validator("kinesis_stream_arn")
    @classmethod
    def _check_stream_arn(cls, value: str) -> str:
        if not KINESIS_STREAM_ARN_PATTERN.match(value):
            raise ValueError("must be arn:aws:kinesis:<region>:<account>:stream/<name>")
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str) -> str:
        if not ROLE_ARN_PATTERN.match(value):
            raise ValueError("must be arn:aws:iam::<account>:role/<name>")
        return value

    @property
    def stream_name(self) -> str:
        return self._arn_part(3)

    @property
    def region(self) -> str:
        return self._arn_part(1)

    def _arn_part(self, group: int) -> str:
        match = KINESIS_STREAM_ARN_PATTERN.match(self.kinesis_stream_arn)
        assert match is not None  # checked by the validator
        return match.group(group)


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

    duration_in_seconds: int = Field(
        3600,
        ge=0,
        le=7200,
        strict=True,
        validation_alias=_alias("DurationInSeconds", "duration_seconds"),
    )


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


class DeliveryStreamConfig(_Model):
    """One delivery stream: a `CreateDeliveryStream` body, or its snake_case form."""

    name: str = Field(validation_alias=_alias("DeliveryStreamName", "name"))
    type: Literal["DirectPut", "KinesisStreamAsSource"] = Field(
        "DirectPut", validation_alias=_alias("DeliveryStreamType", "type")
    )
    kinesis_source: KinesisStreamSource | None = Field(
        None, validation_alias=_alias("KinesisStreamSourceConfiguration", "kinesis_source")
    )
    # One member per destination kind, as in CreateDeliveryStream; exactly one is given.
    s3: ExtendedS3Destination | None = Field(
        None,
        validation_alias=_alias(
            "ExtendedS3DestinationConfiguration", "S3DestinationConfiguration", "s3"
        ),
    )
    splunk: SplunkConfiguration | None = Field(
        None, validation_alias=_alias("SplunkDestinationConfiguration", "splunk")
    )
    http_endpoint: HttpEndpointDestination | None = Field(
        None, validation_alias=_alias("HttpEndpointDestinationConfiguration", "http_endpoint")
    )
    opensearch: OpenSearchConfiguration | None = Field(
        None,
        validation_alias=_alias("AmazonopensearchserviceDestinationConfiguration", "opensearch"),
    )
    elasticsearch: ElasticsearchConfiguration | None = Field(
        None, validation_alias=_alias("ElasticsearchDestinationConfiguration", "elasticsearch")
    )
    redshift: RedshiftConfiguration | None = Field(
        None, validation_alias=_alias("RedshiftDestinationConfiguration", "redshift")
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
            destination = (
                "is not supported by this version yet: use ExtendedS3DestinationConfiguration"
            )
            source = "is not supported by this version yet: only DirectPut streams are"
            problems = [(key, destination) for key in UNSUPPORTED_DESTINATIONS if key in data]
            problems += [(key, source) for key in UNSUPPORTED_SOURCES if key in data]
            if problems:
                raise FieldProblems(problems)
            given = [
                spellings
                for name in DESTINATION_FIELDS
                if not (spellings := _spellings_of(cls, name)).isdisjoint(data)
            ]
            # An unknown key may be the destination misspelt (`S3:`): it is reported instead.
            if not given and not _unknown_keys(cls, data):
                raise FieldProblems(
                    [(DESTINATION_SECTIONS[0], "is required: a stream needs one destination")]
                )
            if len(given) > 1:
                names = [next(iter(spellings & data.keys())) for spellings in given]
                raise FieldProblems(
                    [(names[1], f"a stream has one destination; {names[0]} is given too")]
                )
        return data

    @property
    def destination(self) -> DestinationSection:
        """The stream's one destination section, whatever its kind."""
        sections: list[DestinationSection | None] = [
            getattr(self, name) for name in DESTINATION_FIELDS
        ]
        return next(section for section in sections if section is not None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > 64:
            raise ValueError(f"is {len(value)} characters long, at most 64 are allowed")
        bad = sorted(set(value) - STREAM_NAME_CHARACTERS)
        if bad:
            raise ValueError(f"contains {''.join(bad)!r}; only a-z A-Z 0-9 _ . - are allowed")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _supported_type(cls, value: Any) -> Any:
        if value not in ("DirectPut", "KinesisStreamAsSource"):
            raise ValueError(
                "must be DirectPut or KinesisStreamAsSource: MSKAsSource and DatabaseAsSource "
                "are not supported by this version yet"
            )
        return value

    @model_validator(mode="after")
    def _source_matches_type(self) -> DeliveryStreamConfig:
        if self.type == "KinesisStreamAsSource" and self.kinesis_source is None:
            raise FieldProblems(
                [("KinesisStreamSourceConfiguration", "is required for KinesisStreamAsSource")]
            )
        if self.type != "KinesisStreamAsSource" and self.kinesis_source is not None:
            raise FieldProblems(
                [("DeliveryStreamType", "must be KinesisStreamAsSource with this source")]
            )
        return self


# The fields of DeliveryStreamConfig that hold a destination section: one per kind.
DESTINATION_FIELDS: dict[str, type[DestinationSection]] = {
    "s3": ExtendedS3Destination,
    "splunk": SplunkConfiguration,
    "http_endpoint": HttpEndpointDestination,
    "opensearch": OpenSearchConfiguration,
    "elasticsearch": ElasticsearchConfiguration,
    "redshift": RedshiftConfiguration,
}
DESTINATION_SECTIONS = tuple(kind.section for kind in DESTINATION_FIELDS.values())


def field_spellings(name: str, info: FieldInfo) -> list[str]:
    """Every key that fills a field: its API name, friendly shorthands, other aliases, name."""
    alias = info.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else []
    names = [choice for choice in choices if isinstance(choice, str)]
    shorthands = [short for short, target in _SHORTHANDS.items() if names[:1] == [target]]
    spellings = [*names[:1], *shorthands, *names[1:], name]
    return list(dict.fromkeys(spellings))


def _spellings_of(model: type[BaseModel], name: str) -> set[str]:
    return set(field_spellings(name, model.model_fields[name]))


def _unknown_keys(model: type[BaseModel], data: dict[Any, Any]) -> set[Any]:
    """The keys of `data` that fill no field of `model`."""
    known: set[str] = set()
    for name in model.model_fields:
        known |= _spellings_of(model, name)
    return set(data) - known
