"""The OpenSearch and Elasticsearch destinations' sections."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

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
    size_field,
)
from firehose.processing_config import ProcessingConfiguration


class OpenSearchBufferingHints(BufferingHints):
    """OpenSearch's ranges: 1 to 100 MiB (default 5), 0 to 900 seconds (default 300)."""

    size_in_mbs: int = size_field(5, 100)


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
