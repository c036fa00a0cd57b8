"""Delivery-stream definitions: the stream model, and every config name in one place.

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
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from firehose.config_base import (
    _CODECS_BY_LOWER,
    _SHORTHANDS,
    BIG_BUFFER_DEFAULT_MIB,
    BIG_BUFFER_MIN_MIB,
    BUCKET_ARN_PATTERN,
    ENDPOINT_SCHEMES,
    ROLE_ARN_PATTERN,
    SECRET_KEYS,
    STREAM_NAME_CHARACTERS,
    UNSUPPORTED_DESTINATIONS,
    UNSUPPORTED_SOURCES,
    BackedUpDestination,
    BufferingHints,
    DestinationSection,
    FieldProblems,
    KmsEncryptionConfig,
    RetryOptions,
    S3Configuration,
    S3Encryption,
    _alias,
    _explicitly_disabled,
    _Model,
    _spellings_of,
    _unknown_keys,
    checked_endpoint_url,
    field_spellings,
)
from firehose.config_encryption import DeliveryStreamEncryption
from firehose.config_http import (
    CommonAttribute,
    EndpointConfiguration,
    HttpEndpointBufferingHints,
    HttpEndpointDestination,
    RequestConfiguration,
)
from firehose.config_opensearch import (
    DocumentIdOptions,
    ElasticsearchConfiguration,
    OpenSearchBufferingHints,
    OpenSearchConfiguration,
)
from firehose.config_redshift import (
    RedshiftConfiguration,
    RedshiftRetryOptions,
    RedshiftS3Configuration,
)
from firehose.config_s3 import ExtendedS3Destination
from firehose.config_splunk import (
    SecretsManagerConfiguration,
    SplunkBufferingHints,
    SplunkConfiguration,
)
from firehose.quotas import StreamQuotas

__all__ = [
    "BIG_BUFFER_DEFAULT_MIB",
    "BIG_BUFFER_MIN_MIB",
    "BUCKET_ARN_PATTERN",
    "DESTINATION_FIELDS",
    "DESTINATION_SECTIONS",
    "ENDPOINT_SCHEMES",
    "KINESIS_STREAM_ARN_PATTERN",
    "ROLE_ARN_PATTERN",
    "SECRET_KEYS",
    "STREAM_NAME_CHARACTERS",
    "UNSUPPORTED_DESTINATIONS",
    "UNSUPPORTED_SOURCES",
    "_CODECS_BY_LOWER",
    "_SHORTHANDS",
    "BackedUpDestination",
    "BufferingHints",
    "CommonAttribute",
    "DeliveryStreamConfig",
    "DeliveryStreamEncryption",
    "DestinationSection",
    "DocumentIdOptions",
    "ElasticsearchConfiguration",
    "EndpointConfiguration",
    "ExtendedS3Destination",
    "FieldProblems",
    "HttpEndpointBufferingHints",
    "HttpEndpointDestination",
    "KinesisStreamSource",
    "KmsEncryptionConfig",
    "OpenSearchBufferingHints",
    "OpenSearchConfiguration",
    "RedshiftConfiguration",
    "RedshiftRetryOptions",
    "RedshiftS3Configuration",
    "RequestConfiguration",
    "RetryOptions",
    "S3Configuration",
    "S3Encryption",
    "SecretsManagerConfiguration",
    "SplunkBufferingHints",
    "SplunkConfiguration",
    "_Model",
    "_alias",
    "_explicitly_disabled",
    "_spellings_of",
    "_unknown_keys",
    "checked_endpoint_url",
    "field_spellings",
]


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
    encryption: DeliveryStreamEncryption | None = Field(
        None, validation_alias=_alias("DeliveryStreamEncryptionConfigurationInput", "encryption")
    )
    # Ours: this stream's Direct PUT quotas, over the service's `--quotas` (firehose.quotas).
    quotas: StreamQuotas | None = Field(None, validation_alias=_alias("Quotas", "quotas"))

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
        if self.type != "DirectPut" and self.encryption is not None:
            raise FieldProblems(
                [
                    (
                        "DeliveryStreamEncryptionConfigurationInput",
                        f"is for DirectPut streams only: a {self.type} stream keeps no records "
                        "at rest of its own (encrypt the Kinesis data stream instead)",
                    )
                ]
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
