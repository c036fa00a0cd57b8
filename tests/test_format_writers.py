"""Converted objects read back by real readers (DuckDB and pyarrow for Parquet, pyarrow.orc,
fastavro), schemas from an Avro file and from a Glue table in moto, and the config rules."""

from __future__ import annotations

import io
import os
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import fastavro
import orjson
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from firehose.config import DeliveryStreamConfig
from firehose.format_config import DataFormatConversionConfiguration
from firehose.formats import convert as convert_module
from firehose.formats import parquet as parquet_module
from firehose.formats.convert import RecordConverter
from firehose.formats.loading import SchemaUnavailable, load_columns
from firehose.formats.schema import avro_file_columns, parse_columns
from firehose.testing.servers import S3Server

COLUMNS = [
    ("id", "bigint"),
    ("name", "string"),
    ("at", "timestamp"),
    ("price", "decimal(6,2)"),
    ("tags", "array<string>"),
    ("attrs", "map<string,int>"),
    ("geo", "struct<country:string,lat:double>"),
    ("day", "date"),
]
DOCUMENTS = [
    {"Id": 1, "name": "a", "at": "2024-01-02T03:04:05.123Z", "price": 9.99, "tags": ["x"],
     "attrs": {"k": 1}, "geo": {"country": "DE", "lat": 52.5}, "day": "2024-01-02"},
    {"id": 2, "at": 1704164645, "tags": [], "attrs": {}, "extra": True},
    {"id": "three"},  # fails: not a bigint
]  # fmt: skip
EXPECTED = [
    {"id": 1, "name": "a", "at": datetime(2024, 1, 2, 3, 4, 5, 123000), "price": Decimal("9.99"),
     "tags": ["x"], "attrs": {"k": 1}, "geo": {"country": "DE", "lat": 52.5},
     "day": date(2024, 1, 2)},
    {"id": 2, "name": None, "at": datetime(2024, 1, 2, 3, 4, 5), "price": None, "tags": [],
     "attrs": {}, "geo": None, "day": None},
]  # fmt: skip


def conversion(serializer: dict[str, Any], **schema: Any) -> DataFormatConversionConfiguration:
    schema = schema or {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS]}
    return DataFormatConversionConfiguration.model_validate(
        {
            "SchemaConfiguration": schema,
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": serializer},
        }
    )


def convert(config: DataFormatConversionConfiguration) -> tuple[bytes, list[int]]:
    converter = RecordConverter(config, parse_columns(COLUMNS))
    records = [orjson.dumps(document) + b"\n" for document in DOCUMENTS]
    converted = converter.convert([(b"".join(records), [len(r) for r in records])])
    assert converted.body is not None
    return bytes(converted.body), [failure.index for failure in converted.failures]


def rows_with_dict_maps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**row, "attrs": dict(row["attrs"]) if row["attrs"] is not None else None} for row in rows
    ]


@pytest.mark.parametrize("compression", ["SNAPPY", "GZIP", "UNCOMPRESSED", "ZSTD"])
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_parquet_read_by_duckdb_and_pyarrow(tmp_path: Path, compression: str, version: str) -> None:
    body, failed = convert(
        conversion({"ParquetSerDe": {"Compression": compression, "WriterVersionFormat": version}})
    )
    assert failed == [2]
    path = tmp_path / "o.parquet"
    path.write_bytes(body)
    table = pq.read_table(path)
    assert rows_with_dict_maps(table.to_pylist()) == EXPECTED
    codec = pq.ParquetFile(path).metadata.row_group(0).column(0).compression
    assert codec == {"UNCOMPRESSED": "UNCOMPRESSED"}.get(compression, compression)
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY id")
    assert relation is not None
    result = relation.fetchall()
    assert [row[0] for row in result] == [1, 2]
    assert result[0][2] == datetime(2024, 1, 2, 3, 4, 5, 123000)
    assert result[0][3] == Decimal("9.99")
    assert result[0][5] == {"k": 1}
    assert result[0][6] == {"country": "DE", "lat": 52.5}
    assert result[0][7] == date(2024, 1, 2)


def test_parquet_row_groups_gather_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch read in many slices lands in a few row groups of up to ROW_GROUP_HELD_BYTES of
    Arrow data, every record once and in order, whichever slice and row group it went through
    (a table that still pointed into the buffer its slice was read from would show here)."""
    monkeypatch.setattr(convert_module, "SLICE_BYTES", 4096)
    monkeypatch.setattr(parquet_module, "ROW_GROUP_HELD_BYTES", 64 * 1024)
    documents = [{"id": n, "name": f"row {n} " + "x" * (n % 50)} for n in range(3000)]
    segments = []
    for start in range(0, len(documents), 100):  # one segment for each frame of 100 records
        records = [orjson.dumps(document) + b"\n" for document in documents[start : start + 100]]
        segments.append((b"".join(records), [len(record) for record in records]))
    slices = len(list(convert_module._slices(segments, 4096)))
    converter = RecordConverter(conversion({"ParquetSerDe": {}}), parse_columns(COLUMNS[:2]))
    converted = converter.convert(segments)
    assert converted.body is not None and not converted.failures
    path = tmp_path / "o.parquet"
    path.write_bytes(bytes(converted.body))
    row_groups = pq.ParquetFile(path).metadata.num_row_groups
    assert 1 < row_groups < slices / 4
    assert pq.read_table(path).to_pylist() == documents
    relation = duckdb.sql(f"SELECT id FROM read_parquet('{path}')")
    assert relation is not None
    assert [row[0] for row in relation.fetchall()] == list(range(3000))


@pytest.mark.parametrize("compression", ["SNAPPY", "ZLIB", "NONE", "ZSTD"])
def test_orc_read_by_pyarrow(tmp_path: Path, compression: str) -> None:
    body, failed = convert(
        conversion({"OrcSerDe": {"Compression": compression, "BloomFilterColumns": ["id"]}})
    )
    assert failed == [2]
    table = orc.ORCFile(io.BytesIO(body)).read()
    assert rows_with_dict_maps(table.to_pylist()) == EXPECTED
    assert orc.ORCFile(io.BytesIO(body)).compression == {"NONE": "UNCOMPRESSED"}.get(
        compression, compression
    )


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy", "zstandard"])
def test_avro_read_by_fastavro(codec: str) -> None:
    body, failed = convert(conversion({"AvroSerDe": {"Compression": codec}}))
    assert failed == [2]
    reader = fastavro.reader(io.BytesIO(body))
    assert reader.codec == codec
    rows: list[Any] = list(reader)
    assert [row["id"] for row in rows] == [1, 2]
    assert rows[0]["at"].replace(tzinfo=None) == datetime(2024, 1, 2, 3, 4, 5, 123000)
    assert rows[0]["price"] == Decimal("9.99")
    assert rows[0]["attrs"] == {"k": 1}
    assert rows[0]["geo"] == {"country": "DE", "lat": 52.5}
    assert rows[1]["name"] is None


def test_avro_schema_file_gives_the_columns() -> None:
    columns = avro_file_columns(Path(__file__).with_name("format_files") / "event.avsc")
    assert [(name, str(kind)) for name, kind in columns] == [
        ("id", "bigint"), ("name", "string"), ("at", "timestamp"), ("price", "decimal(6,2)"),
        ("tags", "array<string>"), ("attrs", "map<string,int>"),
        ("geo", "struct<country:string,lat:double>"),
    ]  # fmt: skip


async def test_glue_table_in_moto_gives_the_columns(
    moto_s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint_url)
    glue = boto3.client("glue", endpoint_url=moto_s3.endpoint_url, region_name="us-east-1")
    database = f"db{uuid.uuid4().hex[:8]}"
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "events",
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS]},
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        },
    )
    config = conversion(
        {"ParquetSerDe": {}}, DatabaseName=database, TableName="events", Region="us-east-1"
    )
    columns = await load_columns(config.schema_source, "us-east-1")
    assert [(name, str(kind)) for name, kind in columns] == [
        (n, t.replace(" ", "")) for n, t in COLUMNS
    ]
    missing = conversion({"ParquetSerDe": {}}, DatabaseName=database, TableName="nope")
    with pytest.raises(SchemaUnavailable) as caught:
        await load_columns(missing.schema_source, "us-east-1")
    assert caught.value.code == "DataFormatConversion.EntityNotFound"
    assert os.environ["AWS_ENDPOINT_URL_GLUE"] == moto_s3.endpoint_url


def stream(**destination: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "s",
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::b",
            "DataFormatConversionConfiguration": conversion({"OrcSerDe": {}}).description(),
            **destination,
        },
    }


def test_config_rules() -> None:
    section = DeliveryStreamConfig.model_validate(stream()).s3
    assert section is not None
    assert section.buffering_hints.size_in_mbs == 128
    assert section.extension == ".orc"
    described = section.description("123456789012")["ExtendedS3DestinationDescription"]
    assert described["DataFormatConversionConfiguration"]["Enabled"] is True
    with_extension = DeliveryStreamConfig.model_validate(stream(FileExtension=".x")).s3
    assert with_extension is not None and with_extension.extension == ".x"
    with pytest.raises(ValueError, match="must be UNCOMPRESSED"):
        DeliveryStreamConfig.model_validate(stream(CompressionFormat="GZIP"))
    with pytest.raises(
        ValueError,
        match="SizeInMBs is 5: with DataFormatConversionConfiguration enabled it is 64 to 128",
    ):
        DeliveryStreamConfig.model_validate(
            stream(BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 60})
        )
    with pytest.raises(ValueError, match="unknown type"):
        conversion({"ParquetSerDe": {}}, Columns=[{"Name": "a", "Type": "uniontype<int>"}])
    with pytest.raises(ValueError, match="exactly one of ParquetSerDe"):
        conversion({"ParquetSerDe": {}, "OrcSerDe": {}})
