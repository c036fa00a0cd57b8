"""Error records and source-record backups written to real S3 servers and read back."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from destinations import DestinationContext, build_error_output, build_source_backup
from destinations.error_output import S3ErrorOutput, error_object_id
from destinations.error_records import error_record
from destinations.objectstore import S3ObjectStore
from firehose.batch import Batch, Record, RecordRun
from firehose.compression import get_codec
from firehose.config import DeliveryStreamConfig, S3Configuration
from firehose.destination import FailedRecord
from firehose.errors import DeliveryError
from firehose.settings import Settings
from firehose.testing.servers import S3Server, free_port
from tests.readers import READERS

ARRIVAL = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
ARRIVAL_MS = int(ARRIVAL.timestamp() * 1000)
NOW_MS = ARRIVAL_MS + 60_000
STAMP = "2024-05-06-07-08-09"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:enrich"


def failure(
    seq: int,
    output_type: str = "processing-failed",
    *,
    sub_seq: int = 0,
    arrival_ms: int = ARRIVAL_MS,
    data: bytes = b'{"id": 1}',
    details: Mapping[str, Any] | None = None,
) -> FailedRecord:
    return FailedRecord(
        Record(seq, arrival_ms, memoryview(data), sub_seq),
        output_type,
        "Lambda.FunctionError",
        "the function raised",
        details or {},
    )


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, its credentials in the environment the stores read."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def context(tmp_path: Path) -> DestinationContext:
    return DestinationContext(Settings(data_dir=tmp_path))


def stream(server: S3Server, bucket: str, **s3: Any) -> DeliveryStreamConfig:
    return DeliveryStreamConfig.model_validate(
        {"name": "s", "s3": {"bucket": bucket, "endpoint_url": server.endpoint_url, **s3}}
    )


def read_lines(server: S3Server, bucket: str, key: str, codec: str) -> list[dict[str, Any]]:
    body = READERS[codec](server.get(bucket, key))
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


@pytest.fixture
async def fixed_output(s3_env: S3Server, bucket: str) -> AsyncIterator[S3ErrorOutput]:
    """An error output on the bucket (GZIP, default error prefix) whose clock stands still."""
    location = S3Configuration.model_validate(
        {"bucket": bucket, "prefix": "data/", "compression": "gzip"}
    )
    store = S3ObjectStore(s3_env.endpoint_url)
    output = S3ErrorOutput("s", location, store, clock=lambda: NOW_MS)
    yield output
    await output.close()


def only_key(server: S3Server, bucket: str, prefix: str = "") -> str:
    [key] = server.list_keys(bucket, prefix)
    return key


# ---- record shapes -----------------------------------------------------------------------------

RAW = base64.b64encode(b'{"id": 1}').decode()
COMMON = {
    "attemptsMade": 3,
    "arrivalTimestamp": ARRIVAL_MS,
    "errorCode": "Lambda.FunctionError",
    "errorMessage": "the function raised",
    "attemptEndingTimestamp": NOW_MS,
    "rawData": RAW,
}
SHAPES: list[tuple[str, dict[str, Any], list[tuple[str, Any]]]] = [
    ("processing-failed", {"lambdaArn": LAMBDA}, [*COMMON.items(), ("lambdaArn", LAMBDA)]),
    ("decompression-failed", {}, list(COMMON.items())),
    ("partitioning-failed", {}, list(COMMON.items())),
    (
        "format-conversion-failed",
        {"dataCatalogTable": {"databaseName": "db", "tableName": "t"}},
        [
            ("attemptsMade", 3),
            ("arrivalTimestamp", ARRIVAL_MS),
            ("lastErrorCode", "Lambda.FunctionError"),
            ("lastErrorMessage", "the function raised"),
            ("attemptEndingTimestamp", NOW_MS),
            ("rawData", RAW),
            ("sequenceNumber", "7"),
            ("subSequenceNumber", 2),
            ("dataCatalogTable", {"databaseName": "db", "tableName": "t"}),
        ],
    ),
    (
        "http-endpoint-failed",
        {"httpEndpoint": "https://example.com/ingest"},
        [
            *COMMON.items(),
            ("subsequenceNumber", 2),
            ("dataId", "7.2"),
            ("httpEndpoint", "https://example.com/ingest"),
        ],
    ),
    (
        "AmazonOpenSearchService-failed",
        {"esDocumentId": "doc-1", "esIndexName": "logs", "esTypeName": None},
        [
            ("attemptsMade", 3),
            ("arrivalTimestamp", ARRIVAL_MS),
            ("errorCode", "Lambda.FunctionError"),
            ("errorMessage", "the function raised"),
            ("attemptEndingTimestamp", NOW_MS),
            ("esDocumentId", "doc-1"),
            ("esIndexName", "logs"),
            ("esTypeName", None),
            ("rawData", RAW),
        ],
    ),
    (
        "splunk-failed",
        {},
        [*COMMON.items(), ("EventId", "7.2"), ("subsequenceNumber", 2)],
    ),
]


@pytest.mark.parametrize(
    ("output_type", "details", "expected"), SHAPES, ids=[shape[0] for shape in SHAPES]
)
async def test_each_output_type_is_written_in_its_shape(
    s3_env: S3Server,
    bucket: str,
    fixed_output: S3ErrorOutput,
    output_type: str,
    details: dict[str, Any],
    expected: list[tuple[str, Any]],
) -> None:
    await fixed_output.write([failure(7, output_type, sub_seq=2, details=details)], attempts=3)

    key = only_key(s3_env, bucket)
    assert key.startswith(f"data/{output_type}/2024/05/06/07/s-1-{STAMP}-")
    [record] = read_lines(s3_env, bucket, key, "GZIP")
    assert list(record.items()) == expected


async def test_one_line_per_record_in_the_order_given(
    s3_env: S3Server, bucket: str, fixed_output: S3ErrorOutput
) -> None:
    failures = [failure(seq, data=f"record {seq}".encode()) for seq in (3, 1, 2)]
    await fixed_output.write(failures, attempts=1)
    records = read_lines(s3_env, bucket, only_key(s3_env, bucket), "GZIP")
    assert [base64.b64decode(r["rawData"]) for r in records] == [
        b"record 3",
        b"record 1",
        b"record 2",
    ]


def test_details_override_and_extend_the_record() -> None:
    given = failure(1, details={"attemptsMade": 4, "dataId": "mine", "note": Path("x")})
    record = error_record(given, attempts=2, now_ms=NOW_MS)
    assert record["attemptsMade"] == 4
    assert list(record)[-2:] == ["dataId", "note"]
    assert orjson.loads(orjson.dumps(record, default=str))["note"] == "x"


def test_processing_failed_leaves_out_a_lambda_arn_it_was_not_given() -> None:
    assert "lambdaArn" not in error_record(failure(1), attempts=1, now_ms=NOW_MS)


def test_an_output_type_the_table_does_not_know_gets_the_common_keys() -> None:
    record = error_record(failure(1, "delivery-failed"), attempts=1, now_ms=NOW_MS)
    assert list(record) == list(COMMON)


# ---- keys --------------------------------------------------------------------------------------


async def test_keys_under_a_custom_error_output_prefix(
    s3_env: S3Server, bucket: str, context: DestinationContext
) -> None:
    config = stream(
        s3_env,
        bucket,
        prefix="data/!{timestamp:yyyy}/",
        error_output_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
        compression="zstd",
    )
    processing = [failure(1, arrival_ms=ARRIVAL_MS + 5_000), failure(2)]
    splunk = [failure(3, "splunk-failed", arrival_ms=ARRIVAL_MS + 61_000)]
    output = build_error_output(config, context)
    try:
        await output.write([processing[0], splunk[0], processing[1]], attempts=1)
    finally:
        await output.close()

    processing_id = error_object_id("s", "processing-failed", processing)
    splunk_id = error_object_id("s", "splunk-failed", splunk)
    assert sorted(s3_env.list_keys(bucket)) == [
        f"errors/processing-failed/2024/05/06/s-1-{STAMP}-{processing_id}.zst",
        f"errors/splunk-failed/2024/05/06/s-1-2024-05-06-07-09-10-{splunk_id}.zst",
    ]
    key = f"errors/processing-failed/2024/05/06/s-1-{STAMP}-{processing_id}.zst"
    assert [r["rawData"] for r in read_lines(s3_env, bucket, key, "ZSTD")] == [RAW, RAW]


@pytest.mark.parametrize("codec", list(READERS))
async def test_keys_under_the_default_error_prefix_with_the_codecs_extension(
    s3_env: S3Server, bucket: str, context: DestinationContext, codec: str
) -> None:
    config = stream(s3_env, bucket, prefix="data/", CompressionFormat=codec)
    output = build_error_output(config, context)
    try:
        await output.write([failure(1, "decompression-failed")], attempts=1)
    finally:
        await output.close()

    object_id = error_object_id("s", "decompression-failed", [failure(1)])
    extension = get_codec(codec).extension
    key = f"data/decompression-failed/2024/05/06/07/s-1-{STAMP}-{object_id}{extension}"
    assert s3_env.list_keys(bucket) == [key]
    [record] = read_lines(s3_env, bucket, key, codec)
    assert record["errorCode"] == "Lambda.FunctionError"


async def test_error_keys_follow_the_time_zone_not_the_file_extension(
    s3_env: S3Server, bucket: str, context: DestinationContext
) -> None:
    config = stream(
        s3_env, bucket, compression="gzip", file_extension=".json.gz", time_zone="Asia/Tokyo"
    )
    output = build_error_output(config, context)
    try:
        await output.write([failure(1)], attempts=1)
    finally:
        await output.close()
    key = only_key(s3_env, bucket)
    assert key.startswith("processing-failed/2024/05/06/16/s-1-2024-05-06-16-08-09-")
    assert key.endswith(".gz") and not key.endswith(".json.gz")


async def test_the_same_failures_written_twice_give_one_object(
    s3_env: S3Server, bucket: str, context: DestinationContext
) -> None:
    output = build_error_output(stream(s3_env, bucket, compression="gzip"), context)
    failures = [failure(1), failure(1, sub_seq=1), failure(2)]
    try:
        await output.write(failures, attempts=1)
        first = s3_env.list_keys(bucket)
        await output.write(failures, attempts=2)
        await output.write([failure(9)], attempts=1)  # other records: another object
    finally:
        await output.close()

    keys = s3_env.list_keys(bucket)
    assert len(first) == 1 and first[0] in keys and len(keys) == 2
    assert [r["attemptsMade"] for r in read_lines(s3_env, bucket, first[0], "GZIP")] == [2, 2, 2]


def test_the_object_id_is_fixed_by_stream_type_and_records() -> None:
    failures = [failure(1), failure(1, sub_seq=1)]
    object_id = error_object_id("s", "processing-failed", failures)
    assert object_id == error_object_id("s", "processing-failed", list(failures))
    assert object_id[14] == "4"  # uuid4-shaped
    assert object_id != error_object_id("t", "processing-failed", failures)
    assert object_id != error_object_id("s", "splunk-failed", failures)
    assert object_id != error_object_id("s", "processing-failed", failures[:1])


# ---- failing stores ----------------------------------------------------------------------------


async def test_a_store_that_is_down_raises_a_retriable_delivery_error() -> None:
    location = S3Configuration.model_validate({"bucket": "b"})
    output = S3ErrorOutput("s", location, S3ObjectStore(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(DeliveryError) as caught:
            await output.write([failure(1)], attempts=1)
    finally:
        await output.close()
    assert caught.value.retriable
    assert caught.value.code == "S3.ConnectionFailed"


async def test_writing_nothing_touches_no_store() -> None:
    location = S3Configuration.model_validate({"bucket": "b"})
    output = S3ErrorOutput("s", location, S3ObjectStore(f"http://127.0.0.1:{free_port()}"))
    await output.write([], attempts=1)
    await output.close()


# ---- source-record backup ----------------------------------------------------------------------


def batch_of(*records: bytes) -> Batch:
    batch = Batch(object_id="00000000-0000-4000-8000-000000000001")
    batch.add(RecordRun(0, ARRIVAL_MS, [len(r) for r in records], memoryview(b"".join(records))))
    return batch


async def test_the_backup_writes_under_its_own_prefix_with_its_compression(
    s3_env: S3Server, bucket: str, context: DestinationContext
) -> None:
    config = stream(
        s3_env,
        bucket,
        prefix="data/",
        compression="gzip",
        backup_mode="Enabled",
        backup={"bucket": bucket, "prefix": "raw/", "compression": "zstd"},
    )
    tap = build_source_backup(config, context)
    assert tap is not None
    assert tap.hints.size_in_mbs == 5  # its own hints, not the destination's
    backup = tap.destination
    await backup.start()
    try:
        await backup.deliver(batch_of(b"a\n", b"b\n"))
    finally:
        await backup.close()

    key = f"raw/2024/05/06/07/s-1-{STAMP}-00000000-0000-4000-8000-000000000001.zst"
    assert s3_env.list_keys(bucket) == [key]
    assert READERS["ZSTD"](s3_env.get(bucket, key)) == b"a\nb\n"


async def test_the_backup_uses_the_destinations_store_unless_it_names_one(
    s3_env: S3Server, bucket: str, tmp_path: Path, context: DestinationContext
) -> None:
    same = stream(s3_env, bucket, backup_mode="Enabled", backup={"bucket": bucket})
    own = stream(
        s3_env,
        bucket,
        backup_mode="Enabled",
        backup={"bucket": "local", "endpoint_url": f"file://{tmp_path / 'objects'}"},
    )
    for config in (same, own):
        tap = build_source_backup(config, context)
        assert tap is not None
        backup = tap.destination
        await backup.start()
        try:
            await backup.deliver(batch_of(b"x"))
        finally:
            await backup.close()
    assert len(s3_env.list_keys(bucket)) == 1
    assert len(list((tmp_path / "objects" / "local").rglob("s-1-*"))) == 1


async def test_no_backup_while_disabled(s3_env: S3Server, context: DestinationContext) -> None:
    assert build_source_backup(stream(s3_env, "b"), context) is None
    disabled = stream(s3_env, "b", backup={"bucket": "c"})
    assert build_source_backup(disabled, context) is None
