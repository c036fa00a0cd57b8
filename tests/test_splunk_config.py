"""`SplunkDestinationConfiguration`: the API form and the snake_case form, Splunk's own ranges
and defaults, its description, and a token that no message or description ever shows."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from destinations import DestinationContext, build_destination, build_source_backup
from firehose.config import DeliveryStreamConfig, SplunkConfiguration
from firehose.config_load import ConfigError, load_configs
from firehose.describe import describe
from firehose.settings import Settings

TOKEN = "5f2e9d40-7c4b-4a8e-9a61-2d1b6f0e3c77"

API_FORM = f"""\
DeliveryStreamName: logs
DeliveryStreamType: DirectPut
SplunkDestinationConfiguration:
  HECEndpoint: https://hec.example.com:8088
  HECEndpointType: Event
  HECToken: {TOKEN}
  HECAcknowledgmentTimeoutInSeconds: 300
  RetryOptions:
    DurationInSeconds: 600
  S3BackupMode: AllEvents
  S3Configuration:
    RoleARN: arn:aws:iam::123456789012:role/firehose
    BucketARN: arn:aws:s3:::splunk-backup
    Prefix: backup/
    BufferingHints:
      SizeInMBs: 1
      IntervalInSeconds: 60
    CompressionFormat: GZIP
  BufferingHints:
    SizeInMBs: 2
    IntervalInSeconds: 30
  ProcessingConfiguration:
    Enabled: false
    Processors: []
  CloudWatchLoggingOptions:
    Enabled: true
    LogGroupName: /aws/kinesisfirehose/logs
    LogStreamName: SplunkDelivery
  SecretsManagerConfiguration:
    Enabled: false
"""

SNAKE_FORM = f"""\
name: logs
splunk:
  hec_endpoint: https://hec.example.com:8088/
  hec_endpoint_type: Event
  hec_token: {TOKEN}
  hec_acknowledgment_timeout_seconds: 300
  retry: {{duration_seconds: 600}}
  backup_mode: AllEvents
  s3_configuration:
    role_arn: arn:aws:iam::123456789012:role/firehose
    bucket: splunk-backup
    prefix: backup/
    buffering: {{size_mib: 1, interval_seconds: 60}}
    compression: gzip
  buffering: {{size_mib: 2, interval_seconds: 30}}
  processing: {{enabled: false, processors: []}}
  CloudWatchLoggingOptions:
    Enabled: true
    LogGroupName: /aws/kinesisfirehose/logs
    LogStreamName: SplunkDelivery
  SecretsManagerConfiguration: {{Enabled: false}}
"""


def load(tmp_path: Path, text: str) -> DeliveryStreamConfig:
    path = tmp_path / "logs.yaml"
    path.write_text(textwrap.dedent(text))
    [config] = load_configs(path)
    return config


def problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "logs.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_configs(path)
    return str(caught.value)


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "logs",
        "SplunkDestinationConfiguration": {
            "HECEndpoint": "https://hec.example.com:8088",
            "HECEndpointType": "Raw",
            "HECToken": TOKEN,
            "S3Configuration": {"BucketARN": "arn:aws:s3:::splunk-backup"},
            **extra,
        },
    }


def section_of(config: DeliveryStreamConfig) -> SplunkConfiguration:
    assert isinstance(config.destination, SplunkConfiguration)
    return config.destination


def test_api_and_snake_case_forms_give_the_same_model(tmp_path: Path) -> None:
    api = load(tmp_path, API_FORM)
    assert api == load(tmp_path, SNAKE_FORM)
    splunk = section_of(api)
    assert splunk.hec_endpoint == "https://hec.example.com:8088"
    assert splunk.hec_endpoint_type == "Event"
    assert splunk.token == TOKEN
    assert splunk.retry_policy().deadline_seconds == 600
    assert splunk.buffering_hints.size_bytes == 2 * 1024 * 1024
    assert splunk.backup_location() is splunk.s3_configuration
    assert splunk.error_location().bucket == "splunk-backup"


def test_defaults() -> None:
    splunk = section_of(DeliveryStreamConfig.model_validate(minimal()))
    assert splunk.hec_acknowledgment_timeout_in_seconds == 180
    assert splunk.retry_options.duration_in_seconds == 300
    assert splunk.s3_backup_mode == "FailedEventsOnly"
    assert splunk.backup_location() is None  # failures only
    assert (splunk.buffering_hints.size_in_mbs, splunk.buffering_hints.interval_in_seconds) == (
        5,
        60,
    )


@pytest.mark.parametrize(
    ("member", "value", "field"),
    [
        ("BufferingHints", {"SizeInMBs": 6, "IntervalInSeconds": 60}, "BufferingHints.SizeInMBs"),
        (
            "BufferingHints",
            {"SizeInMBs": 5, "IntervalInSeconds": 61},
            "BufferingHints.IntervalInSeconds",
        ),
        ("BufferingHints", {"SizeInMBs": 5}, "BufferingHints.IntervalInSeconds"),
        ("HECAcknowledgmentTimeoutInSeconds", 179, "HECAcknowledgmentTimeoutInSeconds"),
        ("HECAcknowledgmentTimeoutInSeconds", 601, "HECAcknowledgmentTimeoutInSeconds"),
        ("RetryOptions", {"DurationInSeconds": 7201}, "RetryOptions.DurationInSeconds"),
        ("HECEndpointType", "Json", "HECEndpointType"),
        ("HECEndpoint", "hec.example.com:8088", "HECEndpoint"),
        ("S3BackupMode", "AllData", "S3BackupMode"),
        ("SecretsManagerConfiguration", {"Enabled": True}, "SecretsManagerConfiguration.Enabled"),
    ],
)
def test_out_of_range(tmp_path: Path, member: str, value: Any, field: str) -> None:
    import yaml

    text = problems(tmp_path, yaml.safe_dump(minimal(**{member: value})))
    assert f"SplunkDestinationConfiguration.{field}" in text
    assert TOKEN not in text


@pytest.mark.parametrize("member", ["HECToken", "S3Configuration", "HECEndpoint"])
def test_required_members(tmp_path: Path, member: str) -> None:
    import yaml

    body = minimal()
    del body["SplunkDestinationConfiguration"][member]
    text = problems(tmp_path, yaml.safe_dump(body))
    assert f"SplunkDestinationConfiguration.{member}: " in text, text
    assert "is required" in text


def test_a_token_is_never_echoed_in_problems(tmp_path: Path) -> None:
    import yaml

    too_long = "t" * 3000
    text = problems(tmp_path, yaml.safe_dump(minimal(HECToken=too_long)))
    assert "SplunkDestinationConfiguration.HECToken" in text
    assert "ttttt" not in text


def test_description_hides_the_token(tmp_path: Path) -> None:
    config = load(tmp_path, API_FORM)
    description = describe(config, region="us-east-1", account_id="123456789012", created_at=0)
    [destination] = description["Destinations"]
    splunk = destination["SplunkDestinationDescription"]
    assert splunk["HECEndpointType"] == "Event"
    assert splunk["HECAcknowledgmentTimeoutInSeconds"] == 300
    assert splunk["RetryOptions"] == {"DurationInSeconds": 600}
    assert splunk["S3BackupMode"] == "AllEvents"
    assert splunk["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::splunk-backup"
    assert splunk["BufferingHints"] == {"SizeInMBs": 2, "IntervalInSeconds": 30}
    assert TOKEN not in repr(description)
    assert TOKEN not in repr(config)


def test_the_registry_builds_it_and_its_all_events_backup(tmp_path: Path) -> None:
    config = load(tmp_path, API_FORM)
    context = DestinationContext(Settings())
    destination = build_destination(config, context)
    assert destination.kind == "Splunk"
    assert TOKEN not in destination.target
    backup = build_source_backup(config, context)
    assert backup is not None and backup.processed  # as delivered, after processing
    assert backup.hints.size_in_mbs == 1
