"""The `HttpEndpointDestinationConfiguration` section: its API and snake_case forms, limits,
backup modes, retry policy and description (which never shows the access key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from firehose.config import DeliveryStreamConfig, HttpEndpointDestination
from firehose.describe import describe
from tests.test_config import load_one, only_problem, write, write_body

SECTION = "HttpEndpointDestinationConfiguration"
SECRET = "very-secret-access-key-1234"


def http_body(**fields: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "EndpointConfiguration": {"Url": "https://example.com/in", "Name": "ex"},
        "S3Configuration": {"BucketARN": "arn:aws:s3:::backup"},
        **fields,
    }
    return {"DeliveryStreamName": "h", SECTION: {k: v for k, v in section.items() if v}}


def section_of(stream: DeliveryStreamConfig) -> HttpEndpointDestination:
    section = stream.destination
    assert isinstance(section, HttpEndpointDestination)
    return section


def test_api_and_snake_case_forms_give_the_same_model(tmp_path: Path) -> None:
    api = http_body(
        EndpointConfiguration={"Url": "http://127.0.0.1:8080/in", "Name": "n", "AccessKey": "k"},
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
        RequestConfiguration={
            "ContentEncoding": "GZIP",
            "CommonAttributes": [{"AttributeName": "a", "AttributeValue": "b"}],
        },
        RetryOptions={"DurationInSeconds": 60},
        S3BackupMode="AllData",
        ResponseTimeoutInSeconds=5,
    )
    snake = write(
        tmp_path,
        "snake.yaml",
        """\
        name: h
        http_endpoint:
          endpoint: {url: "http://127.0.0.1:8080/in", name: n, access_key: k}
          buffering: {size_mib: 1, interval_seconds: 0}
          request:
            content_encoding: gzip
            common_attributes: [{name: a, value: b}]
          retry: {duration_seconds: 60}
          backup_mode: alldata
          response_timeout_seconds: 5
          backup: {bucket: backup}
        """,
    )
    assert load_one(write_body(tmp_path, api)) == load_one(snake)


def test_defaults(tmp_path: Path) -> None:
    section = section_of(load_one(write_body(tmp_path, http_body())))
    assert section.kind == "HttpEndpoint"
    assert (section.buffering_hints.size_in_mbs, section.buffering_hints.interval_in_seconds) == (
        5,
        300,
    )
    assert section.s3_backup_mode == "FailedDataOnly"
    assert section.request_configuration.content_encoding == "NONE"
    assert section.response_timeout_seconds == 180
    assert section.max_batch_records == 10_000
    assert section.error_location() is section.s3_configuration
    assert section.backup_location() is None
    policy = section.retry_policy()
    assert policy.deadline_seconds == 300
    assert (policy.initial_backoff_seconds, policy.max_backoff_seconds) == (2.0, 120.0)
    assert policy.jitter_factors == (0.85, 1.15)


def test_all_data_backs_up_every_record_as_delivered(tmp_path: Path) -> None:
    section = section_of(load_one(write_body(tmp_path, http_body(S3BackupMode="AllData"))))
    assert section.backup_location() is section.s3_configuration
    assert section.backs_up_processed


@pytest.mark.parametrize(
    ("fields", "where", "allowed"),
    [
        (
            {"BufferingHints": {"SizeInMBs": 65, "IntervalInSeconds": 60}},
            "BufferingHints.SizeInMBs",
            "less than or equal to 64",
        ),
        (
            {"EndpointConfiguration": {"Url": "ftp://example.com"}},
            "EndpointConfiguration.Url",
            "http:// or https://",
        ),
        (
            {"RequestConfiguration": {"ContentEncoding": "gzip"}},
            "RequestConfiguration.ContentEncoding",
            "GZIP",
        ),
        ({"RetryOptions": {"DurationInSeconds": 7201}}, "RetryOptions.DurationInSeconds", "7200"),
        ({"S3BackupMode": "Enabled"}, "S3BackupMode", "AllData"),
        (
            {"SecretsManagerConfiguration": {"Enabled": True, "SecretARN": "arn:x"}},
            "SecretsManagerConfiguration",
            "AccessKey",
        ),
    ],
)
def test_limits(tmp_path: Path, fields: dict[str, Any], where: str, allowed: str) -> None:
    problem = only_problem(write_body(tmp_path, http_body(**fields)))
    assert problem.field == f"{SECTION}.{where}"
    assert allowed in problem.allowed


def test_common_attributes_limits(tmp_path: Path) -> None:
    many = [{"AttributeName": f"a{i}", "AttributeValue": ""} for i in range(51)]
    body = http_body(RequestConfiguration={"CommonAttributes": many})
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == f"{SECTION}.RequestConfiguration.CommonAttributes"
    long_value = [{"AttributeName": "a", "AttributeValue": "v" * 1025}]
    problem = only_problem(
        write_body(tmp_path, http_body(RequestConfiguration={"CommonAttributes": long_value}))
    )
    assert problem.field.endswith("CommonAttributes[0].AttributeValue")


def test_the_backup_bucket_is_required(tmp_path: Path) -> None:
    body = http_body()
    del body[SECTION]["S3Configuration"]
    problem = only_problem(write_body(tmp_path, body))
    assert (problem.field, problem.allowed) == (f"{SECTION}.S3Configuration", "is required")


def test_a_bad_access_key_is_reported_without_its_value(tmp_path: Path) -> None:
    key = SECRET * 200  # past 4,096 characters
    body = http_body(EndpointConfiguration={"Url": "https://example.com", "AccessKey": key})
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == f"{SECTION}.EndpointConfiguration.AccessKey"
    assert SECRET not in str(problem)


def test_the_access_key_is_never_described_nor_shown(tmp_path: Path) -> None:
    body = http_body(
        EndpointConfiguration={"Url": "https://example.com/in", "Name": "ex", "AccessKey": SECRET}
    )
    stream = load_one(write_body(tmp_path, body))
    description = describe(stream, region="us-east-1", account_id="123456789012", created_at=0)
    [destination] = description["Destinations"]
    http = destination["HttpEndpointDestinationDescription"]
    assert http["EndpointConfiguration"] == {"Url": "https://example.com/in", "Name": "ex"}
    assert http["S3BackupMode"] == "FailedDataOnly"
    assert http["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::backup"
    assert http["RequestConfiguration"] == {"ContentEncoding": "NONE"}
    assert SECRET not in json.dumps(description)
    assert SECRET not in repr(stream) and SECRET not in str(stream)


def test_a_stream_has_one_destination_of_either_kind(tmp_path: Path) -> None:
    body = {**http_body(), "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"}}
    problem = only_problem(write_body(tmp_path, body))
    assert "a stream has one destination" in problem.allowed
