"""The HTTP endpoint destination against a receiver that checks every header and body field and
misbehaves on demand: each failure's code, the request id kept across retries, the stream's
retry window and the backup bucket on real S3 servers."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from destinations import (
    DestinationContext,
    build_destination,
    build_error_output,
    build_source_backup,
)
from destinations.http_endpoint import HttpDestination, request_id_of
from firehose.batch import Batch, BatchBuilder, RecordRun
from firehose.config import DeliveryStreamConfig, HttpEndpointDestination
from firehose.errors import DeliveryError
from firehose.retry import RetryPolicy
from firehose.settings import Settings
from firehose.stream import DeliveryStream
from firehose.testing.http_receiver import HttpReceiver
from firehose.testing.servers import S3Server, free_port
from tests.test_error_output import s3_env
from tests.test_stream_seams import wait_until

__all__ = ["s3_env"]  # a fixture, used by name

ARN = "arn:aws:firehose:us-east-1:000000000000:deliverystream/h"
SECRET = "a-secret-access-key"


def http_config(url: str, name: str = "h", **section: Any) -> DeliveryStreamConfig:
    endpoint = {"Url": url, "Name": "receiver", **section.pop("EndpointConfiguration", {})}
    return DeliveryStreamConfig.model_validate(
        {
            "DeliveryStreamName": name,
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": endpoint,
                "S3Configuration": section.pop(
                    "S3Configuration", {"BucketARN": "arn:aws:s3:::unused"}
                ),
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                **section,
            },
        }
    )


def section_of(config: DeliveryStreamConfig) -> HttpEndpointDestination:
    assert isinstance(config.destination, HttpEndpointDestination)
    return config.destination


def batch_of(records: list[bytes], first_seq: int = 1) -> Batch:
    builder = BatchBuilder(1 << 30, object_id=lambda seq: f"object-{seq}")
    builder.add(
        RecordRun(first_seq, 1000, [len(r) for r in records], memoryview(b"".join(records)))
    )
    return builder.seal()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(source_arn=ARN).start()
    yield server
    server.stop()


@pytest.fixture
async def destination(receiver: HttpReceiver) -> AsyncIterator[HttpDestination]:
    dest = HttpDestination(
        section_of(http_config(receiver.url, ResponseTimeoutInSeconds=1)), source_arn=ARN
    )
    await dest.start()
    yield dest
    await dest.close()


async def test_one_post_per_batch_with_every_header_and_field(
    receiver: HttpReceiver, destination: HttpDestination
) -> None:
    records = [b"", b"hello", bytes(range(256)), b"x" * 100_000]
    await destination.deliver(batch_of(records))
    assert receiver.problems == []
    [request] = receiver.received
    assert request.records == records  # the empty record too
    assert request.request_id == request_id_of(batch_of(records))
    assert "X-Amz-Firehose-Access-Key" not in request.headers
    assert "Content-Encoding" not in request.headers


async def test_access_key_common_attributes_and_gzip() -> None:
    attributes = {"team": "data", "empty": ""}
    receiver = HttpReceiver(
        access_key=SECRET, common_attributes=attributes, source_arn=ARN, gzip=True
    ).start()
    try:
        config = http_config(
            receiver.url,
            EndpointConfiguration={"AccessKey": SECRET},
            RequestConfiguration={
                "ContentEncoding": "GZIP",
                "CommonAttributes": [
                    {"AttributeName": k, "AttributeValue": v} for k, v in attributes.items()
                ],
            },
        )
        dest = HttpDestination(section_of(config), source_arn=ARN)
        await dest.start()
        records = [f"record {i}\n".encode() * 50 for i in range(2000)]  # large: off the loop
        try:
            await dest.deliver(batch_of(records))
        finally:
            await dest.close()
        assert receiver.problems == []
        assert receiver.records() == records
        assert SECRET not in dest.target and SECRET not in repr(vars(dest)["_details"])
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("behaviour", "code", "in_message"),
    [
        ("500", "HttpEndpoint.DestinationException", "the endpoint is down (test)"),
        ("wrong-id", "HttpEndpoint.InvalidResponseFromDestination", "requestId"),
        ("not-json", "HttpEndpoint.InvalidResponseFromDestination", "not JSON"),
        ("too-large", "HttpEndpoint.ResponseTooLarge", "larger than"),
        ("too-large-chunked", "HttpEndpoint.ResponseTooLarge", "larger than"),
        ("wrong-type", "HttpEndpoint.InvalidResponseFromDestination", "text/plain"),
        ("encoded", "HttpEndpoint.InvalidResponseFromDestination", "Content-Encoding"),
        ("redirect", "HttpEndpoint.DestinationException", "not followed"),
        ("reset", "HttpEndpoint.ConnectionReset", "closed"),
        ("hang", "HttpEndpoint.RequestTimeout", "in time"),
    ],
)
async def test_each_misbehaviour_is_a_retriable_failure_with_its_code(
    receiver: HttpReceiver,
    destination: HttpDestination,
    behaviour: str,
    code: str,
    in_message: str,
) -> None:
    receiver.answers.append(behaviour)
    batch = batch_of([b"a", b"b"])
    with pytest.raises(DeliveryError) as caught:
        await destination.deliver(batch)
    error = caught.value
    assert (error.code, error.retriable, error.output_type) == (code, True, "http-endpoint-failed")
    assert in_message in str(error)
    assert error.details == {"httpEndpoint": {"url": receiver.url, "name": "receiver"}}
    assert len(receiver.received) == 1  # a redirect is not followed
    # The same batch again: delivered on the same destination, with the same request id.
    await destination.deliver(batch)
    ids = {request.request_id for request in receiver.received}
    assert ids == {request_id_of(batch)}
    assert receiver.problems == []


async def test_413_is_permanent(receiver: HttpReceiver, destination: HttpDestination) -> None:
    receiver.answers.append("413")
    with pytest.raises(DeliveryError) as caught:
        await destination.deliver(batch_of([b"a"]))
    assert caught.value.code == "HttpEndpoint.DestinationException"
    assert not caught.value.retriable
    assert "413" in str(caught.value) and "too big (test)" in str(caught.value)


async def test_nothing_listening_is_a_connection_failure() -> None:
    config = http_config(f"http://127.0.0.1:{free_port()}/")
    dest = HttpDestination(section_of(config), source_arn=ARN)
    await dest.start()
    with pytest.raises(DeliveryError) as caught:
        await dest.deliver(batch_of([b"a"]))
    await dest.close()
    assert caught.value.code == "HttpEndpoint.ConnectionFailed"


async def test_tls_failure_is_an_ssl_handshake_failure(receiver: HttpReceiver) -> None:
    """https:// to a plain-HTTP port: the handshake cannot succeed."""
    config = http_config(receiver.url.replace("http://", "https://"))
    dest = HttpDestination(section_of(config), source_arn=ARN)
    await dest.start()
    with pytest.raises(DeliveryError) as caught:
        await dest.deliver(batch_of([b"a"]))
    await dest.close()
    assert caught.value.code == "HttpEndpoint.SSLHandshakeFailure"


async def test_one_connection_is_reused(
    receiver: HttpReceiver, destination: HttpDestination
) -> None:
    for index in range(5):
        await destination.deliver(batch_of([b"r"], first_seq=index + 1))
    assert len({request.peer for request in receiver.received}) == 1


def stream_with(
    config: DeliveryStreamConfig, data_dir: Path, settings: Settings, policy: RetryPolicy
) -> DeliveryStream:
    context = DestinationContext(settings)
    return DeliveryStream(
        config,
        build_destination(config, context),
        data_dir=data_dir,
        max_undelivered_bytes=1 << 30,
        error_output=build_error_output(config, context),
        source_backup=build_source_backup(config, context),
        retry_policy=policy,
    )


def s3_backup(bucket: str) -> dict[str, Any]:
    return {
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": "all/",
        "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
    }


def error_records(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    keys = server.list_keys(bucket, "failed/")
    return [json.loads(line) for key in keys for line in server.get(bucket, key).splitlines()]


FAST = RetryPolicy(
    deadline_seconds=1.0,
    initial_backoff_seconds=0.1,
    max_backoff_seconds=0.2,
    jitter_factors=(0.85, 1.15),
)


async def test_past_the_window_records_go_to_the_backup_bucket_as_error_records(
    s3_env: S3Server, bucket: str, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.default = "500"
    config = http_config(receiver.url, S3Configuration=s3_backup(bucket))
    stream = stream_with(config, tmp_path, Settings(), FAST)
    await stream.open()
    await stream.put([b"one", b"two"])
    await wait_until(lambda: stream.counters.failed_records == 2, timeout=30)
    assert await stream.close(timeout=10)
    assert len({r.request_id for r in receiver.received}) == 1  # retried with the same id
    assert len(receiver.received) >= 3
    failed = error_records(s3_env, bucket)
    assert [base64.b64decode(r["rawData"]) for r in failed] == [b"one", b"two"]
    first = failed[0]
    assert list(first) == [
        "attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
        "attemptEndingTimestamp", "rawData", "subsequenceNumber", "dataId", "httpEndpoint",
    ]  # fmt: skip
    assert first["errorCode"] == "HttpEndpoint.DestinationException"
    assert "the endpoint is down (test)" in first["errorMessage"]
    assert first["attemptsMade"] == len(receiver.received)
    assert first["httpEndpoint"] == {"url": receiver.url, "name": "receiver"}
    assert (first["dataId"], first["subsequenceNumber"]) == ("1.0", 0)
    key = s3_env.list_keys(bucket, "failed/")[0]
    assert key.startswith("failed/http-endpoint-failed/")
    assert s3_env.list_keys(bucket, "all/") == []  # FailedDataOnly
    counters = stream.health()
    assert counters["DeliveryToHttpEndpoint.FailedRecords"] == 2
    assert counters["DeliveryToHttpEndpoint.Records"] == 0


async def test_413_goes_to_the_backup_bucket_without_a_retry(
    s3_env: S3Server, bucket: str, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.answers.append("413")
    config = http_config(receiver.url, S3Configuration=s3_backup(bucket))
    policy = RetryPolicy(deadline_seconds=3600, initial_backoff_seconds=0.1)
    stream = stream_with(config, tmp_path, Settings(), policy)
    await stream.open()
    await stream.put([b"big"])
    await wait_until(lambda: stream.counters.failed_records == 1, timeout=30)
    await stream.put([b"small"])
    await wait_until(lambda: receiver.records() == [b"small"], timeout=30)
    assert await stream.close(timeout=10)
    [failed] = error_records(s3_env, bucket)
    assert base64.b64decode(failed["rawData"]) == b"big" and failed["attemptsMade"] == 1
    assert len(receiver.received) == 2


async def test_all_data_backs_up_every_record_and_counts_both(
    s3_env: S3Server, bucket: str, receiver: HttpReceiver, tmp_path: Path
) -> None:
    config = http_config(receiver.url, S3Configuration=s3_backup(bucket), S3BackupMode="AllData")
    stream = stream_with(config, tmp_path, Settings(), FAST)
    await stream.open()
    sent = [f"r{i}\n".encode() for i in range(500)]
    await stream.put(sent)
    await wait_until(lambda: stream.wal.delivered_seq == 500, timeout=30)
    assert await stream.close(timeout=10)
    assert receiver.records() == sent
    backed_up = b"".join(s3_env.get(bucket, k) for k in s3_env.list_keys(bucket, "all/"))
    assert backed_up == b"".join(sent)
    health = stream.health()
    assert health["DeliveryToHttpEndpoint.Records"] == 500
    assert health["DeliveryToHttpEndpoint.Bytes"] == len(b"".join(sent))
    assert health["BackupToS3.Records"] == 500


async def test_the_stream_cuts_at_most_10000_records_a_request(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    config = http_config(receiver.url)
    settings = Settings(s3_endpoint_url=f"file://{tmp_path / 's3'}")
    stream = stream_with(config, tmp_path, settings, FAST)
    await stream.open()
    await stream.put([b"x"] * 25_000)
    await wait_until(lambda: stream.wal.delivered_seq == 25_000, timeout=30)
    assert await stream.close(timeout=10)
    assert [len(r.records) for r in receiver.received] == [10_000, 10_000, 5_000]


def test_the_request_id_is_a_uuid_fixed_by_the_object_id() -> None:
    first, again = batch_of([b"a"]), batch_of([b"a", b"b"])
    assert request_id_of(first) == request_id_of(again)  # both object-1
    assert request_id_of(first) != request_id_of(batch_of([b"a"], first_seq=2))


def test_gzip_bodies_decompress_to_the_same_json() -> None:
    from destinations.http_body import encode_records, request_body

    records = encode_records(batch_of([b"a", b"bc"]))
    plain = request_body(records, "id", 5, gzip=False)
    assert json.loads(plain) == {
        "requestId": "id",
        "timestamp": 5,
        "records": [{"data": "YQ=="}, {"data": "YmM="}],
    }
    assert gzip.decompress(request_body(records, "id", 5, gzip=True)) == plain
    assert json.loads(request_body(b"", "id", 5, gzip=False))["records"] == []


async def test_close_without_start_and_twice() -> None:
    dest = HttpDestination(section_of(http_config("http://127.0.0.1:1/")), source_arn=ARN)
    await dest.close()
    await dest.start()
    await dest.close()
    await dest.close()
    await asyncio.sleep(0)
