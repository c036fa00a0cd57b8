"""What every delivery-stream config model shares: the model base, field spellings, buffering
hints, the destination section contract and the S3 bucket shape every kind backs up to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from firehose.compression import CODECS, UnknownCompressionFormat, get_codec
from firehose.keys import prefix_problems
from firehose.processing_config import ProcessingConfiguration
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


# The API's pattern for KMS key ARNs: a key or an alias, in a region and an account.
KMS_KEY_ARN_PATTERN = re.compile(
    r"^arn:[^:]+:kms:([a-z0-9-]+):(\d{12}):(key|alias)/[a-zA-Z0-9_+=,.@/-]+$", re.ASCII
)
KMS_KEY_ARN_HINT = "must look like arn:aws:kms:<region>:<account>:key/<id> (or :alias/<name>)"


def checked_kms_key_arn(value: str) -> str:
    if not KMS_KEY_ARN_PATTERN.match(value):
        raise ValueError(KMS_KEY_ARN_HINT)
    return value


def kms_key_region(key_arn: str) -> str:
    """The region a checked KMS key ARN names: where its KMS calls go."""
    match = KMS_KEY_ARN_PATTERN.match(key_arn)
    assert match is not None  # checked by the validators
    return match.group(1)


def checked_endpoint_url(value: str | None) -> str | None:
    """`value` if it is an endpoint objects can go to, None if unset; else ValueError.

    The one check for a stream's EndpointURL and for the service-wide override.
    """
    if value and not value.startswith(ENDPOINT_SCHEMES):
        raise ValueError("must start with http://, https:// or file://")
    return value or None


def size_field(default: int, high: int) -> Any:
    """`SizeInMBs` with a destination kind's range (1 to `high` MiB)."""
    return Field(
        default, ge=1, le=high, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )


def interval_field(default: int, high: int) -> Any:
    """`IntervalInSeconds` with a destination kind's range (0 to `high` seconds)."""
    return Field(
        default,
        ge=0,
        le=high,
        strict=True,
        validation_alias=_alias("IntervalInSeconds", "interval_seconds"),
    )


def duration_field(default: int) -> Any:
    """`RetryOptions.DurationInSeconds`: 0 to 7200 seconds."""
    return Field(
        default,
        ge=0,
        le=7200,
        strict=True,
        validation_alias=_alias("DurationInSeconds", "duration_seconds"),
    )


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

    size_in_mbs: int = size_field(5, 128)
    interval_in_seconds: int = interval_field(300, 900)

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


class KmsEncryptionConfig(_Model):
    """`KMSEncryptionConfig`: objects are written with SSE-KMS under this key."""

    aws_kms_key_arn: str = Field(validation_alias=_alias("AWSKMSKeyARN", "key_arn"))

    @field_validator("aws_kms_key_arn")
    @classmethod
    def _check_key_arn(cls, value: str) -> str:
        return checked_kms_key_arn(value)


class S3Encryption(_Model):
    """`EncryptionConfiguration` of an S3 section: exactly one of `NoEncryptionConfig:
    NoEncryption` (the bucket's default applies) or `KMSEncryptionConfig`."""

    no_encryption_config: Literal["NoEncryption"] | None = Field(
        None, validation_alias=_alias("NoEncryptionConfig", "no_encryption")
    )
    kms_encryption_config: KmsEncryptionConfig | None = Field(
        None, validation_alias=_alias("KMSEncryptionConfig", "kms")
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> S3Encryption:
        given = (self.no_encryption_config is not None) + (self.kms_encryption_config is not None)
        if given != 1:
            how = "both are given" if given else "neither is given"
            raise FieldProblems(
                [
                    (
                        "EncryptionConfiguration",
                        f"give exactly one of NoEncryptionConfig or KMSEncryptionConfig: {how}",
                    )
                ]
            )
        return self

    @property
    def kms_key_arn(self) -> str | None:
        config = self.kms_encryption_config
        return None if config is None else config.aws_kms_key_arn

    def description(self) -> dict[str, Any]:
        if self.kms_key_arn is None:
            return {"NoEncryptionConfig": "NoEncryption"}
        return {"KMSEncryptionConfig": {"AWSKMSKeyARN": self.kms_key_arn}}


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
    encryption_configuration: S3Encryption | None = Field(
        None, validation_alias=_alias("EncryptionConfiguration", "encryption")
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
    def kms_key_arn(self) -> str | None:
        """The key its objects are written under with SSE-KMS; None: no SSE header is sent."""
        encryption = self.encryption_configuration
        return None if encryption is None else encryption.kms_key_arn

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
            "EncryptionConfiguration": self.encryption_configuration.description()
            if self.encryption_configuration is not None
            else {"NoEncryptionConfig": "NoEncryption"},
            "CloudWatchLoggingOptions": self.cloud_watch_logging_options or {"Enabled": False},
        }
        if self.error_output_prefix:
            plain["ErrorOutputPrefix"] = self.error_output_prefix
        return plain


class RetryOptions(_Model):
    """`RetryOptions` of the non-S3 destinations: the retry window, from the first attempt."""

    duration_in_seconds: int = duration_field(300)


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
