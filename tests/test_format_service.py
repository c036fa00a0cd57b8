"""Format conversion through `firehose serve`: the schema from a Glue table in moto, Parquet
in a real S3 store read back by DuckDB, and a record that does not fit filed under
`format-conversion-failed` while the rest of the batch is delivered."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import boto3
import duckdb

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess, s3_stream


def test_parquet_from_a_glue_schema_with_a_failing_record(
    seaweedfs: S3Server, moto_s3: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    database = f"db{uuid.uuid4().hex[:8]}"
    glue = boto3.client(
        "glue",
        endpoint_url=moto_s3.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=moto_s3.access_key,
        aws_secret_access_key=moto_s3.secret_key,
    )
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "clicks",
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "id", "Type": "int"},
                    {"Name": "page", "Type": "string"},
                    {"Name": "at", "Type": "timestamp"},
                ]
            },
        },
    )
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    seaweedfs.create_bucket(bucket)
    stream = s3_stream(
        "clicks",
        bucket,
        Prefix="parquet/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
        DataFormatConversionConfiguration={
            "SchemaConfiguration": {
                "DatabaseName": database,
                "TableName": "clicks",
                "Region": "us-east-1",
            },
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "ZSTD"}}},
        },
    )
    env = {**seaweedfs.env(), "AWS_ENDPOINT_URL_GLUE": moto_s3.endpoint_url}
    service = ServiceProcess(tmp_path / "svc", [stream], env=env)
    services.append(service)
    service.start()
    sent = [
        json.dumps({"ID": i, "page": f"/p/{i}", "at": 1_704_164_645 + i}).encode() + b"\n"
        for i in range(100)
    ]
    sent[40] = b'{"id": "forty", "page": "/bad"}\n'
    answer = service.client().put_record_batch(
        DeliveryStreamName="clicks", Records=[{"Data": data} for data in sent]
    )
    assert answer["FailedPutCount"] == 0
    assert service.terminate() == 0

    [key] = seaweedfs.list_keys(bucket, "parquet/")
    assert key.endswith(".parquet") and "/clicks-1-" in key
    path = tmp_path / "o.parquet"
    path.write_bytes(seaweedfs.get(bucket, key))
    query = f"SELECT id, page, epoch(\"at\") FROM read_parquet('{path}') ORDER BY id"
    rows = duckdb.sql(query)
    assert rows is not None
    assert rows.fetchall() == [(i, f"/p/{i}", 1_704_164_645 + i) for i in range(100) if i != 40]

    [error_key] = seaweedfs.list_keys(bucket, "errors/")
    assert error_key.startswith("errors/format-conversion-failed/clicks-1-")
    [error] = [json.loads(line) for line in seaweedfs.get(bucket, error_key).splitlines()]
    assert base64.b64decode(error["rawData"]) == sent[40]
    assert error["lastErrorCode"] == "DataFormatConversion.MalformedData"
    assert "'id'" in error["lastErrorMessage"]
    assert error["dataCatalogTable"] == {
        "catalogId": "000000000000",
        "databaseName": database,
        "tableName": "clicks",
        "region": "us-east-1",
        "versionId": "LATEST",
        "catalogArn": "arn:aws:glue:us-east-1:000000000000:catalog",
    }
    assert {"attemptsMade", "arrivalTimestamp", "attemptEndingTimestamp"} <= set(error)
    assert error["subSequenceNumber"] == 0 and error["sequenceNumber"]
