"""Direct PUT quotas: the buckets, the config, and throttled answers end to end through boto3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from firehose.config_load import ConfigError, load_configs
from firehose.quotas import MIB, REQUEST_REFUSED, Limits, StreamQuota, StreamQuotas
from firehose.settings import SettingsError, load_settings
from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.test_metrics import scrape, start, value

THROTTLED = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}


# ---- the buckets ---------------------------------------------------------------------------


def test_a_full_bucket_takes_the_leading_records_that_fit_the_record_limit() -> None:
    quota = StreamQuota(
        Limits(records_per_second=3, requests_per_second=None, bytes_per_second=None)
    )
    assert quota.admit([b"a"] * 5, 5) == 3
    assert quota.admit([b"a"], 1) == 0  # nothing left this second


def test_the_byte_limit_cuts_the_batch_before_the_record_that_does_not_fit() -> None:
    quota = StreamQuota(
        Limits(records_per_second=None, requests_per_second=None, bytes_per_second=10)
    )
    records = [b"1234", b"1234", b"1234"]
    assert quota.admit(records, 12) == 2


def test_over_the_request_limit_the_request_is_refused_and_spends_nothing() -> None:
    quota = StreamQuota(Limits(records_per_second=2, requests_per_second=1, bytes_per_second=None))
    assert quota.admit([b"a"], 1) == 1
    assert quota.admit([b"a"], 1) == REQUEST_REFUSED


def test_without_quotas_nothing_limits() -> None:
    assert Limits.resolve(None, "off") is None
    assert Limits.resolve(StreamQuotas(), "off") is None


def test_aws_defaults_and_a_stream_s_own_limits_over_them() -> None:
    assert Limits.resolve(None, "aws") == Limits(500_000, 2_000, 5 * MIB)
    assert Limits.resolve(None, "aws-small") == Limits(100_000, 1_000, 1 * MIB)
    own = StreamQuotas(records_per_second=10)
    assert Limits.resolve(own, "aws") == Limits(10, 2_000, 5 * MIB)
    assert Limits.resolve(own, "off") == Limits(10, None, None)


# ---- the config ----------------------------------------------------------------------------


def _stream_with(tmp_path: Path, quotas: Any) -> Path:
    body = {
        "DeliveryStreamName": "s",
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"},
        "Quotas": quotas,
    }
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(body))
    return path


def test_a_stream_s_quotas_load_in_either_spelling(tmp_path: Path) -> None:
    [stream] = load_configs(_stream_with(tmp_path, {"RecordsPerSecond": 10, "MiBPerSecond": 2}))
    assert stream.quotas == StreamQuotas(records_per_second=10, mib_per_second=2)
    [stream] = load_configs(_stream_with(tmp_path, {"requests_per_second": 5}))
    assert stream.quotas == StreamQuotas(requests_per_second=5)


@pytest.mark.parametrize(
    ("quotas", "field"),
    [
        ({"RecordsPerSecond": 0}, "RecordsPerSecond"),
        ({"RequestsPerSecond": "many"}, "RequestsPerSecond"),
        ({"MiBPerSecond": 0.5}, "MiBPerSecond"),
        ({"BytesPerSecond": 5}, "BytesPerSecond"),
    ],
)
def test_bad_quotas_are_reported_by_field(tmp_path: Path, quotas: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_configs(_stream_with(tmp_path, quotas))
    [problem] = caught.value.problems
    assert f"Quotas.{field}" in str(problem)


# ---- end to end ----------------------------------------------------------------------------


def test_throttled_puts_answer_as_firehose_and_are_counted(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"q-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    slow = {**s3_stream("slow", bucket), "Quotas": {"RecordsPerSecond": 1}}
    calls = {**s3_stream("calls", bucket), "Quotas": {"RequestsPerSecond": 1}}
    service = start(
        services,
        tmp_path,
        [slow, calls, s3_stream("clicks", bucket)],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url, "--quotas", "aws"],
        env=seaweedfs.env(),
    )
    client = no_retries(service)

    # One record a second: a batch of 5 gets its first record in, the other 4 throttled.
    records = [f"r{i}\n".encode() for i in range(5)]
    answer = client.put_record_batch(
        DeliveryStreamName="slow", Records=[{"Data": r} for r in records]
    )
    assert answer["FailedPutCount"] == 4
    assert "RecordId" in answer["RequestResponses"][0]
    assert [{k: e[k] for k in THROTTLED} for e in answer["RequestResponses"][1:]] == [THROTTLED] * 4

    # PutRecord over the record limit fails whole; at most one a second gets through.
    refused, put_calls = _first_refusal(
        lambda: client.put_record(DeliveryStreamName="slow", Record={"Data": b"x"})
    )
    assert refused.response["Error"]["Code"] == "ServiceUnavailableException"
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    # Over the requests-per-second limit a PutRecordBatch answers 200 with every entry throttled.
    throttled, batch_calls = _first_throttled_batch(
        lambda: client.put_record_batch(DeliveryStreamName="calls", Records=[{"Data": b"y"}] * 3)
    )
    assert throttled["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert throttled["FailedPutCount"] == 3
    assert [{k: e[k] for k in THROTTLED} for e in throttled["RequestResponses"]] == [THROTTLED] * 3
    # PutRecord over it fails whole.
    refused, calls_put = _first_refusal(
        lambda: client.put_record(DeliveryStreamName="calls", Record={"Data": b"y"})
    )
    assert refused.response["Error"]["Code"] == "ServiceUnavailableException"
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    samples = scrape(service)
    slow_label = {"delivery_stream_name": "slow"}
    calls_label = {"delivery_stream_name": "calls"}
    clicks_label = {"delivery_stream_name": "clicks"}
    # Every record sent is either incoming or throttled; the refused ones are throttled.
    slow_throttled = value(samples, "firehose_ThrottledRecords_total", slow_label)
    slow_incoming = value(samples, "firehose_IncomingRecords_total", slow_label)
    assert slow_throttled >= 4 + 1
    assert slow_incoming + slow_throttled == len(records) + put_calls
    calls_throttled = value(samples, "firehose_ThrottledRecords_total", calls_label)
    calls_incoming = value(samples, "firehose_IncomingRecords_total", calls_label)
    assert calls_throttled >= 3
    assert calls_incoming + calls_throttled == 3 * batch_calls + calls_put
    assert value(samples, "firehose_ThrottledRecords_total", clicks_label) == 0
    # The limits in force: a stream's own over the AWS defaults.
    assert value(samples, "firehose_RecordsPerSecondLimit", slow_label) == 1
    assert value(samples, "firehose_PutRequestsPerSecondLimit", slow_label) == 2_000
    assert value(samples, "firehose_PutRequestsPerSecondLimit", calls_label) == 1
    assert value(samples, "firehose_RecordsPerSecondLimit", clicks_label) == 500_000
    assert value(samples, "firehose_BytesPerSecondLimit", clicks_label) == 5 * MIB


def no_retries(service: ServiceProcess) -> Any:
    """A boto3 client that makes each call once: the SDK would retry a 503 on its own."""
    return boto3.client(
        "firehose",
        endpoint_url=service.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _first_refusal(call: Any, tries: int = 50) -> tuple[ClientError, int]:
    """Call until the service refuses: (the refusal, calls made). A bucket of one a second
    refills by one unit a second at most, so one of a few calls in a row is refused whatever
    the machine's speed."""
    for calls in range(1, tries + 1):
        try:
            call()
        except ClientError as exc:
            return exc, calls
    raise AssertionError(f"no call of {tries} was refused")


def _first_throttled_batch(call: Any, tries: int = 50) -> tuple[dict[str, Any], int]:
    """Call until a PutRecordBatch answer has every entry throttled: (it, calls made)."""
    for calls in range(1, tries + 1):
        answer = call()
        if answer["FailedPutCount"] == len(answer["RequestResponses"]):
            return answer, calls
    raise AssertionError(f"no call of {tries} was throttled whole")


def test_the_quotas_and_log_format_settings_name_what_they_allow() -> None:
    assert load_settings({"quotas": "aws-small", "log_format": "json"}).quotas == "aws-small"
    assert load_settings({}).quotas == "off" and load_settings({}).log_format == "text"
    with pytest.raises(SettingsError) as caught:
        load_settings({"quotas": "lots", "log_format": "xml"})
    [log_format, quotas] = sorted(caught.value.problems)
    assert quotas.startswith("--quotas: got 'lots'") and "'aws'" in quotas
    assert log_format.startswith("--log-format: got 'xml'") and "'json'" in log_format
