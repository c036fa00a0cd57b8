"""`AmazonopensearchserviceDestinationConfiguration` and `ElasticsearchDestinationConfiguration`:
both forms, OpenSearch's ranges and defaults, the endpoint rule, the description, and a password
that no problem or description ever shows."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations import DestinationContext, build_destination, build_source_backup
from firehose.config import (
    DeliveryStreamConfig,
    ElasticsearchConfiguration,
    OpenSearchConfiguration,
)
from firehose.config_load import ConfigError, load_configs
from firehose.describe import describe
from firehose.settings import Settings

PASSWORD = "pa55-w0rd-7c4b-4a8e"
SECTION = "AmazonopensearchserviceDestinationConfiguration"

API_FORM = f"""\
DeliveryStreamName: docs
DeliveryStreamType: DirectPut
{SECTION}:
  RoleARN: arn:aws:iam::123456789012:role/firehose
  ClusterEndpoint: https://search.example.com:9200/
  IndexName: logs
  TypeName: ""
  IndexRotationPeriod: OneWeek
  BufferingHints:
    SizeInMBs: 100
    IntervalInSeconds: 0
  RetryOptions:
    DurationInSeconds: 60
  S3BackupMode: AllDocuments
  S3Configuration:
    BucketARN: arn:aws:s3:::search-backup
    Prefix: backup/
  DocumentIdOptions:
    DefaultDocumentIdFormat: NO_DOCUMENT_ID
  ProcessingConfiguration:
    Enabled: false
    Processors: []
  CloudWatchLoggingOptions:
    Enabled: false
  VpcConfiguration:
    SubnetIds: [subnet-1]
    SecurityGroupIds: [sg-1]
    RoleARN: arn:aws:iam::123456789012:role/vpc
  Username: firehose
  Password: {PASSWORD}
  VerifyTLS: false
"""

SNAKE_FORM = f"""\
name: docs
opensearch:
  role_arn: arn:aws:iam::123456789012:role/firehose
  cluster_endpoint: https://search.example.com:9200
  index_name: logs
  index_rotation_period: OneWeek
  buffering: {{size_mib: 100, interval_seconds: 0}}
  retry: {{duration_seconds: 60}}
  backup_mode: AllDocuments
  s3_configuration: {{bucket: search-backup, prefix: backup/}}
  document_id_options: {{default_document_id_format: NO_DOCUMENT_ID}}
  processing: {{enabled: false, processors: []}}
  CloudWatchLoggingOptions: {{Enabled: false}}
  VpcConfiguration:
    SubnetIds: [subnet-1]
    SecurityGroupIds: [sg-1]
    RoleARN: arn:aws:iam::123456789012:role/vpc
  username: firehose
  password: {PASSWORD}
  verify_tls: false
"""


def load(tmp_path: Path, text: str) -> DeliveryStreamConfig:
    path = tmp_path / "docs.yaml"
    path.write_text(textwrap.dedent(text))
    [config] = load_configs(path)
    return config


def problems(tmp_path: Path, body: dict[str, Any]) -> str:
    path = tmp_path / "docs.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError) as caught:
        load_configs(path)
    return str(caught.value)


def minimal(section: str = SECTION, **extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "docs",
        section: {
            "ClusterEndpoint": "http://127.0.0.1:9200",
            "IndexName": "logs",
            "S3Configuration": {"BucketARN": "arn:aws:s3:::search-backup"},
            **extra,
        },
    }


def section_of(config: DeliveryStreamConfig) -> OpenSearchConfiguration:
    assert isinstance(config.destination, OpenSearchConfiguration)
    return config.destination


def test_api_and_snake_case_forms_give_the_same_model(tmp_path: Path) -> None:
    api = load(tmp_path, API_FORM)
    assert api == load(tmp_path, SNAKE_FORM)
    search = section_of(api)
    assert search.endpoint == "https://search.example.com:9200"
    assert search.type_name is None
    assert search.document_ids is False
    assert search.retry_policy().deadline_seconds == 60
    assert search.buffering_hints.size_bytes == 100 * 1024 * 1024
    assert search.backup_location() is search.s3_configuration
    assert search.verify_tls is False


def test_defaults() -> None:
    search = section_of(DeliveryStreamConfig.model_validate(minimal()))
    assert search.index_rotation_period == "OneDay"
    assert search.retry_options.duration_in_seconds == 300
    assert search.s3_backup_mode == "FailedDocumentsOnly"
    assert search.backup_location() is None
    assert search.document_ids is True
    hints = search.buffering_hints
    assert (hints.size_in_mbs, hints.interval_in_seconds) == (5, 300)
    assert search.kind == "AmazonOpenSearchService"


def test_elasticsearch_has_the_same_shape() -> None:
    config = DeliveryStreamConfig.model_validate(
        minimal("ElasticsearchDestinationConfiguration", TypeName="doc")
    )
    search = config.destination
    assert isinstance(search, ElasticsearchConfiguration)
    assert search.kind == "Elasticsearch"
    assert search.type_name == "doc"
    snake = DeliveryStreamConfig.model_validate(
        {"name": "docs", "elasticsearch": minimal()[SECTION] | {"TypeName": "doc"}}
    )
    assert snake == config


@pytest.mark.parametrize(
    ("member", "value", "field"),
    [
        ("BufferingHints", {"SizeInMBs": 101, "IntervalInSeconds": 60}, "BufferingHints.SizeInMBs"),
        ("BufferingHints", {"SizeInMBs": 0, "IntervalInSeconds": 60}, "BufferingHints.SizeInMBs"),
        (
            "BufferingHints",
            {"SizeInMBs": 5, "IntervalInSeconds": 901},
            "BufferingHints.IntervalInSeconds",
        ),
        ("RetryOptions", {"DurationInSeconds": 7201}, "RetryOptions.DurationInSeconds"),
        ("IndexRotationPeriod", "OneYear", "IndexRotationPeriod"),
        ("S3BackupMode", "AllData", "S3BackupMode"),
        ("DocumentIdOptions", {"DefaultDocumentIdFormat": "UUID"}, "DocumentIdOptions"),
        ("ClusterEndpoint", "search.example.com:9200", "ClusterEndpoint"),
        ("IndexName", "Logs", "IndexName"),
        ("IndexName", "_logs", "IndexName"),
        ("Password", PASSWORD, "Username"),
    ],
)
def test_out_of_range(tmp_path: Path, member: str, value: Any, field: str) -> None:
    text = problems(tmp_path, minimal(**{member: value}))
    assert f"{SECTION}.{field}" in text, text
    assert PASSWORD not in text


def test_a_domain_arn_alone_is_not_enough(tmp_path: Path) -> None:
    body = minimal(DomainARN="arn:aws:es:us-east-1:123456789012:domain/logs")
    del body[SECTION]["ClusterEndpoint"]
    text = problems(tmp_path, body)
    assert f"{SECTION}.ClusterEndpoint: is required here: a DomainARN" in text


@pytest.mark.parametrize("member", ["IndexName", "S3Configuration", "ClusterEndpoint"])
def test_required_members(tmp_path: Path, member: str) -> None:
    body = minimal()
    del body[SECTION][member]
    text = problems(tmp_path, body)
    assert f"{SECTION}.{member}: " in text, text


def test_a_password_is_never_echoed_in_problems(tmp_path: Path) -> None:
    text = problems(tmp_path, minimal(Username="u", Password=["not", PASSWORD]))
    assert f"{SECTION}.Password" in text
    assert PASSWORD not in text


def test_description_hides_the_credentials(tmp_path: Path) -> None:
    config = load(tmp_path, API_FORM)
    description = describe(config, region="us-east-1", account_id="123456789012", created_at=0)
    [destination] = description["Destinations"]
    shown = destination["AmazonopensearchserviceDestinationDescription"]
    assert shown["ClusterEndpoint"] == "https://search.example.com:9200"
    assert shown["IndexName"] == "logs"
    assert shown["IndexRotationPeriod"] == "OneWeek"
    assert shown["BufferingHints"] == {"SizeInMBs": 100, "IntervalInSeconds": 0}
    assert shown["RetryOptions"] == {"DurationInSeconds": 60}
    assert shown["S3BackupMode"] == "AllDocuments"
    assert shown["DocumentIdOptions"] == {"DefaultDocumentIdFormat": "NO_DOCUMENT_ID"}
    assert shown["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::search-backup"
    assert "TypeName" not in shown
    assert PASSWORD not in repr(description)
    assert PASSWORD not in repr(config)
    assert "Password" not in shown and "Username" not in shown


def test_the_registry_builds_it_and_its_all_documents_backup(tmp_path: Path) -> None:
    config = load(tmp_path, API_FORM)
    context = DestinationContext(Settings())
    destination = build_destination(config, context)
    assert destination.kind == "AmazonOpenSearchService"
    assert PASSWORD not in destination.target
    backup = build_source_backup(config, context)
    assert backup is not None and backup.processed
