"""/metrics end to end: `firehose serve` as a process, real producers, SeaweedFS as S3; the
exposition parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from firehose.testing.servers import S3Server, free_port
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.e2e import wait_for
from tests.kinesis_fixtures import KinesisServer
from tests.test_kinesis_service import put
from tests.test_kinesis_service import service as kinesis_service
from tests.test_processing_service import processors

STREAM = {"delivery_stream_name": "clicks"}


def scrape(service: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"{service.url}/metrics") as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, labels: dict[str, str] = STREAM) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url) as answer:
        return json.loads(answer.read())


def start(
    services: list[ServiceProcess], workdir: Path, streams: list[dict[str, Any]], **kwargs: Any
) -> ServiceProcess:
    service = ServiceProcess(workdir, streams, **kwargs)
    services.append(service)
    return service.start()


def test_metrics_count_what_was_put_and_delivered(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"m-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    service = start(
        services,
        tmp_path,
        [s3_stream("clicks", bucket, Prefix="clicks/")],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url],
        env=seaweedfs.env(),
    )
    client = service.client()
    batches = [[f'{{"batch": {b}, "n": {i}}}\n'.encode() for i in range(50 + b)] for b in range(4)]
    for records in batches:
        answer = client.put_record_batch(
            DeliveryStreamName="clicks", Records=[{"Data": r} for r in records]
        )
        assert answer["FailedPutCount"] == 0
    single = b'{"single": true}\n'
    client.put_record(DeliveryStreamName="clicks", Record={"Data": single})
    client.describe_delivery_stream(DeliveryStreamName="clicks")
    sent = [r for records in batches for r in records] + [single]
    batch_bytes = sum(len(r) for records in batches for r in records)

    wait_for(lambda: value(scrape(service), "firehose_DeliveryToS3_Records_total") == len(sent))
    # Counted once S3 acknowledged; the watermark (freshness 0) follows a moment later.
    wait_for(lambda: value(scrape(service), "firehose_DeliveryToS3_DataFreshness") == 0)
    samples = scrape(service)
    assert value(samples, "firehose_IncomingRecords_total") == len(sent)
    assert value(samples, "firehose_IncomingBytes_total") == sum(map(len, sent))
    assert value(samples, "firehose_DeliveryToS3_Bytes_total") == sum(map(len, sent))
    assert value(samples, "firehose_IncomingPutRequests_total") == len(batches) + 1
    assert value(samples, "firehose_PutRecordBatch_Records_total") == len(sent) - 1
    assert value(samples, "firehose_PutRecordBatch_Bytes_total") == batch_bytes
    assert value(samples, "firehose_PutRecord_Bytes_total") == len(single)
    assert value(samples, "firehose_ThrottledRecords_total") == 0
    objects = value(samples, "firehose_DeliveryToS3_ObjectCount_total")
    assert objects >= 1
    assert objects == len(seaweedfs.list_keys(bucket, "clicks/"))
    assert value(samples, "firehose_DeliveryToS3_Success") == 1.0
    # One latency observation and one request per call, per operation.
    assert value(samples, "firehose_PutRecordBatch_Latency_seconds_count") == len(batches)
    assert value(samples, "firehose_PutRecordBatch_Requests_total") == len(batches)
    assert value(samples, "firehose_PutRecord_Latency_seconds_count") == 1
    assert value(samples, "firehose_DescribeDeliveryStream_Requests_total") == 1
    inf = {**STREAM, "le": "+Inf"}
    assert value(samples, "firehose_PutRecordBatch_Latency_seconds_bucket", inf) == len(batches)
    # No quotas by default: no limit gauges.
    assert not any(name.endswith("PerSecondLimit") for name, _ in samples)


def test_a_failing_destination_shows_in_success_and_freshness(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    service = start(
        services,
        tmp_path,
        [s3_stream("clicks", "gone", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})],
        args=["--s3-endpoint-url", nowhere],
        env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    client = service.client()
    records = [f"record {i}\n".encode() for i in range(20)]
    client.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in records])

    def freshness() -> float:
        return value(scrape(service), "firehose_DeliveryToS3_DataFreshness")

    wait_for(lambda: value(scrape(service), "firehose_DeliveryToS3_Success") < 1)
    wait_for(lambda: freshness() > 0)
    first = freshness()
    wait_for(lambda: freshness() > first)  # the oldest record keeps waiting
    samples = scrape(service)
    assert value(samples, "firehose_DeliveryToS3_Success") == 0.0
    assert value(samples, "firehose_DeliveryToS3_Records_total") == 0
    assert value(samples, "firehose_IncomingRecords_total") == len(records)

    # The status page's data says the same, with the error that keeps it from delivering.
    def status() -> dict[str, Any]:
        streams: list[dict[str, Any]] = get_json(f"{service.url}/status.json")["streams"]
        return streams[0]

    wait_for(lambda: bool(status()["errors"]))
    stream = status()
    assert stream["delivery"] in ("retrying", "delivering", "stalled")
    assert stream["totals"]["delivered_records"] == 0
    assert stream["freshness_seconds"] > 0
    assert "connect" in stream["errors"][-1]["message"].lower()


def test_processing_partitioning_and_backup_metrics(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"m-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    stream = s3_stream(
        "clicks",
        bucket,
        Prefix="customer=!{partitionKeyFromQuery:customer}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 900},  # partitions stay open
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration=processors(
            ("MetadataExtraction", {"MetadataExtractionQuery": "{customer: .c}"}),
            ("AppendDelimiterToRecord", {}),
        ),
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    )
    service = start(
        services,
        tmp_path,
        [stream],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url, "--max-active-partitions", "2"],
        env=seaweedfs.env(),
    )
    # Three customers for two partitions: c's record is refused; "not json" fails processing.
    sent = [json.dumps({"c": c, "n": n}).encode() for n, c in enumerate("abcab")] + [b"not json"]
    answer = service.client().put_record_batch(
        DeliveryStreamName="clicks", Records=[{"Data": r} for r in sent]
    )
    assert answer["FailedPutCount"] == 0

    wait_for(lambda: value(scrape(service), "firehose_BackupToS3_Records_total") == len(sent))
    samples = scrape(service)
    assert value(samples, "firehose_BackupToS3_Bytes_total") == sum(map(len, sent))
    assert value(samples, "firehose_BackupToS3_ObjectCount_total") >= 1
    assert value(samples, "firehose_BackupToS3_Success") == 1.0
    assert value(samples, "firehose_PartitionCount") == 2
    assert value(samples, "firehose_PartitionCountExceeded") == 1
    # The five JSON records came out of processing (with a delimiter each); "not json" did not.
    assert value(samples, "firehose_SucceedProcessing_Records_total") == 5
    assert value(samples, "firehose_SucceedProcessing_Bytes_total") == sum(map(len, sent[:5])) + 5
    assert value(samples, "firehose_ExecuteProcessing_Duration_seconds_count") >= 1
    assert value(samples, "firehose_ExecuteProcessing_Success") == 1.0
    # Nothing reached the main destination yet: its partitions wait for their interval.
    assert value(samples, "firehose_DeliveryToS3_Records_total") == 0
    assert value(samples, "firehose_DeliveryToS3_DataFreshness") > 0


def test_format_conversion_metrics(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"m-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    stream = s3_stream(
        "clicks",
        bucket,
        Prefix="parquet/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
        DataFormatConversionConfiguration={
            "SchemaConfiguration": {"Columns": [{"Name": "id", "Type": "int"}]},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
        },
    )
    service = start(
        services,
        tmp_path,
        [stream],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url],
        env=seaweedfs.env(),
    )
    good = [json.dumps({"id": i}).encode() + b"\n" for i in range(9)]
    bad = b'{"id": "nine"}\n'
    service.client().put_record_batch(
        DeliveryStreamName="clicks", Records=[{"Data": r} for r in [*good, bad]]
    )
    wait_for(lambda: value(scrape(service), "firehose_FailedConversion_Records_total") == 1)
    samples = scrape(service)
    assert value(samples, "firehose_SucceedConversion_Records_total") == len(good)
    assert value(samples, "firehose_SucceedConversion_Bytes_total") == sum(map(len, good))
    assert value(samples, "firehose_FailedConversion_Bytes_total") == len(bad)
    assert value(samples, "firehose_DeliveryToS3_ObjectCount_total") == 1


def test_kinesis_source_metrics(moto_s3: S3Server, tmp_path: Path) -> None:
    kinesis = KinesisServer("moto", moto_s3.endpoint_url)
    arn = kinesis.create_stream(shards=2)
    bucket = f"k-{uuid.uuid4().hex[:10]}"
    moto_s3.create_bucket(bucket)
    service = kinesis_service(tmp_path, moto_s3, arn, bucket).start()
    try:
        put(kinesis, arn.rsplit("/", 1)[1], 0, 300)
        label = {"delivery_stream_name": "fromkinesis"}
        wait_for(
            lambda: value(scrape(service), "firehose_DeliveryToS3_Records_total", label) == 300
        )
        samples = scrape(service)
        size = sum(len(f"r{j}\n") for j in range(300))
        assert value(samples, "firehose_DataReadFromKinesisStream_Records_total", label) == 300
        assert value(samples, "firehose_DataReadFromKinesisStream_Bytes_total", label) == size
        assert value(samples, "firehose_KinesisMillisBehindLatest", label) >= 0
        # Not a Direct PUT stream: no put metrics for it.
        assert ("firehose_IncomingPutRequests_total", tuple(label.items())) not in samples
    finally:
        service.ensure_stopped()
