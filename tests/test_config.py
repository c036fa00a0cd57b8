"""Loading delivery-stream definitions: real CreateDeliveryStream bodies, the friendly form,
defaults, every validation rule, and problems a user can act on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from firehose.compression import CODECS
from firehose.config import DeliveryStreamConfig, ExtendedS3Destination, S3Configuration
from firehose.config_load import ConfigError, ConfigProblem, load_configs

REQUEST_BODY = """\
DeliveryStreamName: clickstream
DeliveryStreamType: DirectPut
ExtendedS3DestinationConfiguration:
  RoleARN: arn:aws:iam::123456789012:role/firehose-delivery
  BucketARN: arn:aws:s3:::analytics-raw
  Prefix: "clicks/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"
  ErrorOutputPrefix: "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
  BufferingHints:
    SizeInMBs: 64
    IntervalInSeconds: 60
  CompressionFormat: GZIP
  FileExtension: .json.gz
  CustomTimeZone: Asia/Tokyo
  CloudWatchLoggingOptions:
    Enabled: true
    LogGroupName: /aws/kinesisfirehose/clickstream
    LogStreamName: DestinationDelivery
  EncryptionConfiguration:
    NoEncryptionConfig: NoEncryption
  ProcessingConfiguration:
    Enabled: false
    Processors: []
  S3BackupMode: Disabled
Tags:
  - Key: team
    Value: analytics
  - Key: env
    Value: prod
"""

MINIMAL: dict[str, Any] = {
    "DeliveryStreamName": "s",
    "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"},
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def write_body(folder: Path, body: dict[str, Any], name: str = "stream.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def load_one(path: Path) -> DeliveryStreamConfig:
    streams = load_configs(path)
    assert len(streams) == 1
    return streams[0]


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_configs(path)
    return caught.value.problems


def only_problem(path: Path) -> ConfigProblem:
    problems = problems_of(path)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def s3_of(stream: DeliveryStreamConfig) -> ExtendedS3Destination:
    """The stream's S3 destination section (these tests define S3 streams only)."""
    assert stream.s3 is not None
    return stream.s3


def with_s3(**fields: Any) -> dict[str, Any]:
    """MINIMAL with ExtendedS3DestinationConfiguration fields set (None removes one)."""
    s3 = {**MINIMAL["ExtendedS3DestinationConfiguration"], **fields}
    return {
        **MINIMAL,
        "ExtendedS3DestinationConfiguration": {k: v for k, v in s3.items() if v is not None},
    }


# ---- real request bodies -----------------------------------------------------------------------


def test_create_delivery_stream_body_loads_as_is(tmp_path: Path) -> None:
    stream = load_one(write(tmp_path, "clickstream.yaml", REQUEST_BODY))

    assert stream.name == "clickstream"
    assert stream.type == "DirectPut"
    s3 = s3_of(stream)
    assert s3.bucket_arn == "arn:aws:s3:::analytics-raw"
    assert s3.bucket == "analytics-raw"
    assert s3.role_arn == "arn:aws:iam::123456789012:role/firehose-delivery"
    assert s3.prefix == "clicks/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"
    assert s3.error_output_prefix == "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
    assert (s3.buffering_hints.size_in_mbs, s3.buffering_hints.interval_in_seconds) == (64, 60)
    assert s3.buffering_hints.size_bytes == 64 * 1024 * 1024
    assert s3.compression_format == "GZIP"
    assert s3.extension == ".json.gz"
    assert s3.custom_time_zone == "Asia/Tokyo"
    assert s3.cloud_watch_logging_options is not None
    assert s3.cloud_watch_logging_options["Enabled"] is True
    assert s3.encryption_configuration is not None
    assert s3.encryption_configuration.no_encryption_config == "NoEncryption"
    assert s3.kms_key_arn is None
    assert s3.processing_configuration is not None
    assert s3.processing_configuration.description() == {"Enabled": False, "Processors": []}
    assert s3.s3_backup_mode == "Disabled"
    assert stream.tags == [{"Key": "team", "Value": "analytics"}, {"Key": "env", "Value": "prod"}]


@pytest.mark.parametrize(
    "codec", ["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY", "ZSTD"]
)
def test_every_compression_format_loads(tmp_path: Path, codec: str) -> None:
    text = REQUEST_BODY.replace("CompressionFormat: GZIP", f"CompressionFormat: {codec}")
    assert s3_of(load_one(write(tmp_path, "s.yaml", text))).compression_format == codec


def test_deprecated_s3_destination_configuration_key_loads(tmp_path: Path) -> None:
    text = REQUEST_BODY.replace(
        "ExtendedS3DestinationConfiguration:", "S3DestinationConfiguration:"
    )
    extended = load_one(write(tmp_path, "extended.yaml", REQUEST_BODY))
    assert load_one(write(tmp_path, "plain.yaml", text)) == extended


def test_body_written_as_json_loads_the_same(tmp_path: Path) -> None:
    body = yaml.safe_load(REQUEST_BODY)
    expected = load_one(write(tmp_path, "body.yaml", REQUEST_BODY))
    spaces = tmp_path / "spaces"
    spaces.mkdir()
    (spaces / "body.yaml").write_text(json.dumps(body, indent=2))
    tabs = tmp_path / "tabs"
    tabs.mkdir()
    # YAML refuses tab indentation, which JSON tools produce; the JSON body still loads.
    (tabs / "body.yaml").write_text(json.dumps(body, indent="\t"))

    assert load_one(spaces / "body.yaml") == expected
    assert load_one(tabs / "body.yaml") == expected


# ---- the friendly form -------------------------------------------------------------------------


def test_friendly_form_gives_the_same_model_as_the_api_form(tmp_path: Path) -> None:
    api = write(
        tmp_path,
        "api.yaml",
        """\
        DeliveryStreamName: clicks
        ExtendedS3DestinationConfiguration:
          BucketARN: arn:aws:s3:::my-bucket
          Prefix: "clicks/!{timestamp:yyyy}/"
          ErrorOutputPrefix: "errors/!{firehose:error-output-type}/"
          BufferingHints: {SizeInMBs: 8, IntervalInSeconds: 30}
          CompressionFormat: HADOOP_SNAPPY
          FileExtension: .hs
          CustomTimeZone: Europe/Paris
          EndpointURL: file://data/s3
        """,
    )
    friendly = """\
        name: clicks
        s3:
          {bucket}
          prefix: "clicks/!{{timestamp:yyyy}}/"
          error_output_prefix: "errors/!{{firehose:error-output-type}}/"
          buffering: {{size_mib: 8, interval_seconds: 30}}
          compression: hadoop_snappy
          file_extension: .hs
          time_zone: Europe/Paris
          endpoint_url: file://data/s3
        """
    by_name = write(tmp_path, "by_name.yaml", friendly.format(bucket="bucket: my-bucket"))
    by_arn = write(
        tmp_path, "by_arn.yaml", friendly.format(bucket="bucket_arn: arn:aws:s3:::my-bucket")
    )

    expected = load_one(api)
    assert load_one(by_name) == expected
    assert load_one(by_arn) == expected
    assert s3_of(expected).endpoint_url == "file://data/s3"


@pytest.mark.parametrize("written", ["gzip", "GZIP", "Gzip"])
def test_friendly_compression_takes_any_letter_case(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, "s.yaml", f"name: s\ns3: {{bucket: b, compression: {written}}}\n")
    assert s3_of(load_one(path)).compression_format == "GZIP"


def test_friendly_compression_lists_the_formats_in_snake_case(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, compression: gz}\n")
    assert str(only_problem(path)) == (
        f"{path}: s3.compression: got 'gz', must be one of uncompressed, gzip, zip, snappy, "
        "hadoop_snappy, zstd (did you mean gzip?)"
    )


def test_compression_format_by_its_field_name_takes_any_letter_case(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, compression_format: Zstd}\n")
    assert s3_of(load_one(path)).compression_format == "ZSTD"


def test_api_compression_format_lists_the_api_names(tmp_path: Path) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(CompressionFormat="gz")))
    assert problem.allowed == (
        "must be one of UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY, ZSTD (did you mean GZIP?)"
    )


def test_api_compression_format_is_exact_as_in_the_api(tmp_path: Path) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(CompressionFormat="gzip")))
    assert problem.field == "ExtendedS3DestinationConfiguration.CompressionFormat"
    assert problem.value == "gzip"
    assert "did you mean GZIP" in problem.allowed


# ---- defaults ----------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    stream = load_one(write_body(tmp_path, MINIMAL))
    assert stream.type == "DirectPut"
    assert s3_of(stream).buffering_hints.size_in_mbs == 5
    assert s3_of(stream).buffering_hints.interval_in_seconds == 300
    assert s3_of(stream).compression_format == "UNCOMPRESSED"
    assert s3_of(stream).prefix == ""
    assert s3_of(stream).error_output_prefix is None
    assert s3_of(stream).file_extension is None
    assert s3_of(stream).extension == ""
    assert s3_of(stream).custom_time_zone is None
    assert s3_of(stream).s3_backup_mode == "Disabled"


@pytest.mark.parametrize(
    ("codec", "extension"),
    [
        ("UNCOMPRESSED", ""),
        ("GZIP", ".gz"),
        ("ZIP", ".zip"),
        ("Snappy", ".snappy"),
        ("HADOOP_SNAPPY", ".hsnappy"),
        ("ZSTD", ".zst"),
    ],
)
def test_extension_follows_the_codec(tmp_path: Path, codec: str, extension: str) -> None:
    stream = load_one(write_body(tmp_path, with_s3(CompressionFormat=codec)))
    assert s3_of(stream).extension == extension == CODECS[codec].extension


def test_file_extension_overrides_the_codec_default(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(CompressionFormat="GZIP", FileExtension=".log.gz"))
    assert s3_of(load_one(path)).extension == ".log.gz"


def test_empty_file_extension_means_the_default(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(CompressionFormat="ZSTD", FileExtension=""))
    assert s3_of(load_one(path)).extension == ".zst"


# ---- range edges -------------------------------------------------------------------------------

HINTS = "ExtendedS3DestinationConfiguration.BufferingHints"


@pytest.mark.parametrize("size", [1, 128])
def test_size_in_range_loads(tmp_path: Path, size: int) -> None:
    path = write_body(
        tmp_path, with_s3(BufferingHints={"SizeInMBs": size, "IntervalInSeconds": 60})
    )
    assert s3_of(load_one(path)).buffering_hints.size_in_mbs == size


@pytest.mark.parametrize(
    ("size", "allowed"),
    [(0, "must be greater than or equal to 1"), (129, "must be less than or equal to 128")],
)
def test_size_out_of_range_is_a_problem(tmp_path: Path, size: int, allowed: str) -> None:
    path = write_body(
        tmp_path, with_s3(BufferingHints={"SizeInMBs": size, "IntervalInSeconds": 60})
    )
    assert only_problem(path) == ConfigProblem(str(path), f"{HINTS}.SizeInMBs", size, allowed)


@pytest.mark.parametrize("interval", [0, 900])
def test_interval_in_range_loads(tmp_path: Path, interval: int) -> None:
    hints = {"SizeInMBs": 5, "IntervalInSeconds": interval}
    path = write_body(tmp_path, with_s3(BufferingHints=hints))
    assert s3_of(load_one(path)).buffering_hints.interval_in_seconds == interval


@pytest.mark.parametrize(
    ("interval", "allowed"),
    [(-1, "must be greater than or equal to 0"), (901, "must be less than or equal to 900")],
)
def test_interval_out_of_range_is_a_problem(tmp_path: Path, interval: int, allowed: str) -> None:
    hints = {"SizeInMBs": 5, "IntervalInSeconds": interval}
    path = write_body(tmp_path, with_s3(BufferingHints=hints))
    assert only_problem(path) == ConfigProblem(
        str(path), f"{HINTS}.IntervalInSeconds", interval, allowed
    )


@pytest.mark.parametrize("value", ["5", 5.5, True])
def test_size_must_be_a_whole_number(tmp_path: Path, value: Any) -> None:
    path = write_body(
        tmp_path, with_s3(BufferingHints={"SizeInMBs": value, "IntervalInSeconds": 60})
    )
    problem = only_problem(path)
    assert (problem.field, problem.value) == (f"{HINTS}.SizeInMBs", value)
    assert problem.allowed == "must be a whole number"


@pytest.mark.parametrize(
    ("hints", "missing", "given"),
    [
        ({"SizeInMBs": 5}, "IntervalInSeconds", "SizeInMBs"),
        ({"IntervalInSeconds": 60}, "SizeInMBs", "IntervalInSeconds"),
    ],
)
def test_buffering_hints_come_together(
    tmp_path: Path, hints: dict[str, int], missing: str, given: str
) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(BufferingHints=hints)))
    assert problem.field == f"{HINTS}.{missing}"
    assert given in problem.allowed
    assert str(problem).startswith(f"{tmp_path / 'stream.yaml'}: {HINTS}.{missing}: is required")


def test_friendly_buffering_hints_come_together(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, buffering: {size_mib: 5}}\n")
    assert str(only_problem(path)) == (
        f"{path}: s3.buffering.interval_seconds: is required when size_mib is given: give both"
    )


# ---- single-field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn", ["my-bucket", "arn:aws:s3:::", "arn:aws:s3:::a/b", "arn:aws:iam:::b", "s3://b"]
)
def test_bad_bucket_arn(tmp_path: Path, arn: str) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(BucketARN=arn)))
    assert problem.field == "ExtendedS3DestinationConfiguration.BucketARN"
    assert problem.value == arn
    assert "arn:aws:s3:::<bucket>" in problem.allowed


def test_other_partitions_bucket_arn_loads(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(BucketARN="arn:aws-cn:s3:::my.bucket_1"))
    assert s3_of(load_one(path)).bucket == "my.bucket_1"


def test_bad_friendly_bucket_names_the_bucket_not_an_arn(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: my bucket}\n")
    problem = only_problem(path)
    assert (problem.field, problem.value) == ("s3.bucket", "my bucket")
    assert str(problem).startswith(f"{path}: s3.bucket: got 'my bucket', must be a bucket name")


def test_bucket_and_bucket_arn_together_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, bucket_arn: 'arn:aws:s3:::c'}\n")
    problem = only_problem(path)
    assert problem.field == "s3.bucket"
    assert "give only one" in problem.allowed


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 64])
def test_good_stream_names(tmp_path: Path, name: str) -> None:
    assert load_one(write_body(tmp_path, {**MINIMAL, "DeliveryStreamName": name})).name == name


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("x" * 65, "is 65 characters long, at most 64 are allowed"),
        ("bad name", "contains ' '; only a-z A-Z 0-9 _ . - are allowed"),
        ("a/b:c", "contains '/:'; only a-z A-Z 0-9 _ . - are allowed"),
        ("", "must not be empty"),
        (123, "must be a string"),
    ],
)
def test_bad_stream_names(tmp_path: Path, name: Any, allowed: str) -> None:
    path = write_body(tmp_path, {**MINIMAL, "DeliveryStreamName": name})
    assert only_problem(path) == ConfigProblem(str(path), "DeliveryStreamName", name, allowed)


def test_missing_stream_name_is_required(tmp_path: Path) -> None:
    body = {"ExtendedS3DestinationConfiguration": MINIMAL["ExtendedS3DestinationConfiguration"]}
    path = write_body(tmp_path, body)
    assert str(only_problem(path)) == f"{path}: DeliveryStreamName: is required"


def test_missing_fields_are_named_in_the_users_style(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "s3: {prefix: p/}\n")
    assert [str(p) for p in problems_of(path)] == [
        f"{path}: name: is required",
        f"{path}: s3.bucket: is required",
    ]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc+9", "../../etc/passwd"])
def test_bad_time_zone(tmp_path: Path, zone: str) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(CustomTimeZone=zone)))
    assert problem.field == "ExtendedS3DestinationConfiguration.CustomTimeZone"
    assert problem.value == zone
    assert "IANA time zone" in problem.allowed


@pytest.mark.parametrize(
    ("extension", "allowed"),
    [
        ("gz", "must start with '.'"),
        (".GZ", "contains 'GZ'; only 0-9 a-z ! - _ . * ' ( ) are allowed"),
        ("." + "x" * 128, "is 129 characters long, at most 128 are allowed"),
    ],
)
def test_bad_file_extension(tmp_path: Path, extension: str, allowed: str) -> None:
    path = write_body(tmp_path, with_s3(FileExtension=extension))
    assert only_problem(path) == ConfigProblem(
        str(path), "ExtendedS3DestinationConfiguration.FileExtension", extension, allowed
    )


def test_long_values_are_shortened_in_the_message(tmp_path: Path) -> None:
    extension = "." + "x" * 300
    text = str(only_problem(write_body(tmp_path, with_s3(FileExtension=extension))))
    assert "(301 characters)" in text
    assert len(text) < 300


def test_bad_endpoint_url(tmp_path: Path) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(EndpointURL="localhost:9000")))
    assert problem.field == "ExtendedS3DestinationConfiguration.EndpointURL"
    assert problem.allowed == "must start with http://, https:// or file://"


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("BuferingHints", "BufferingHints"), ("Prefx", "Prefix"), ("ErrorOutputPrefix2", None)],
)
def test_unknown_key_is_not_a_known_field(
    tmp_path: Path, typo: str, suggestion: str | None
) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(**{typo: "x"})))
    assert problem.field == f"ExtendedS3DestinationConfiguration.{typo}"
    assert problem.allowed.startswith("is not a known field")
    if suggestion:
        assert f"did you mean {suggestion}?" in problem.allowed


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_body(tmp_path, {**MINIMAL, "DeliveryStreamTyp": "DirectPut"})
    assert str(only_problem(path)) == (
        f"{path}: DeliveryStreamTyp: is not a known field (did you mean DeliveryStreamType?)"
    )


def test_unknown_friendly_key(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, prefx: p/}\n")
    assert (
        str(only_problem(path)) == f"{path}: s3.prefx: is not a known field (did you mean prefix?)"
    )


def test_snake_case_file_gets_a_snake_case_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\nS3: {bucket: b}\n")
    assert str(only_problem(path)) == f"{path}: S3: is not a known field (did you mean s3?)"


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("Prefix2", "prefix"), ("Compression", "compression"), ("bufering", "buffering")],
)
def test_snake_case_section_gets_snake_case_suggestions(
    tmp_path: Path, typo: str, suggestion: str
) -> None:
    path = write(tmp_path, "s.yaml", f"name: s\ns3: {{bucket: b, {typo}: x}}\n")
    assert only_problem(path).allowed == f"is not a known field (did you mean {suggestion}?)"


def test_api_file_gets_api_suggestions_in_any_letter_case(tmp_path: Path) -> None:
    problem = only_problem(write_body(tmp_path, with_s3(prefix="p/", compressionformat="GZIP")))
    assert problem.field == "ExtendedS3DestinationConfiguration.compressionformat"
    assert problem.allowed == "is not a known field (did you mean CompressionFormat?)"


def test_both_destination_keys_is_a_problem(tmp_path: Path) -> None:
    body = {**MINIMAL, "S3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"}}
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == "S3DestinationConfiguration"
    assert "ExtendedS3DestinationConfiguration" in problem.allowed
    assert "give only one" in problem.allowed


@pytest.mark.parametrize(
    "destination",
    ["SnowflakeDestinationConfiguration", "IcebergDestinationConfiguration"],
)
def test_other_destination_types_are_refused_clearly(tmp_path: Path, destination: str) -> None:
    body = {"DeliveryStreamName": "s", destination: {"EndpointConfiguration": {"Url": "x"}}}
    path = write_body(tmp_path, body)
    assert str(only_problem(path)) == (
        f"{path}: {destination}: is not supported by this version yet: "
        "use ExtendedS3DestinationConfiguration"
    )


def test_a_stream_needs_a_destination(tmp_path: Path) -> None:
    path = write_body(tmp_path, {"DeliveryStreamName": "s"})
    assert str(only_problem(path)) == (
        f"{path}: ExtendedS3DestinationConfiguration: is required: a stream needs one destination"
    )
    snake = write(tmp_path, "snake.yaml", "name: s\n")
    assert str(only_problem(snake)) == f"{snake}: s3: is required: a stream needs one destination"


def test_a_stream_has_one_destination(tmp_path: Path) -> None:
    body = {**MINIMAL, "S3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"}}
    problems = problems_of(write_body(tmp_path, body))
    assert [(p.field, p.allowed) for p in problems] == [
        (
            "S3DestinationConfiguration",
            "names the same field as ExtendedS3DestinationConfiguration: give only one of them",
        )
    ]


def test_the_destination_section_gives_hints_retry_policy_and_description(
    tmp_path: Path,
) -> None:
    stream = load_one(write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b}\n"))
    section = stream.destination
    assert section is s3_of(stream) and section.kind == "S3"
    assert section.buffering_hints.size_in_mbs == 5
    assert section.retry_policy().deadline_seconds is None  # S3: retried until delivered
    description = section.description("123456789012")
    assert description["ExtendedS3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::b"
    assert "S3BackupMode" not in description["S3DestinationDescription"]


@pytest.mark.parametrize("stream_type", ["MSKAsSource", "Direct"])
def test_only_direct_put_and_kinesis_streams(tmp_path: Path, stream_type: str) -> None:
    problem = only_problem(write_body(tmp_path, {**MINIMAL, "DeliveryStreamType": stream_type}))
    assert (problem.field, problem.value) == ("DeliveryStreamType", stream_type)
    assert problem.allowed.startswith("must be DirectPut or KinesisStreamAsSource")


KINESIS_SOURCE = {
    "KinesisStreamARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks",
    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
}


def test_kinesis_source(tmp_path: Path) -> None:
    body = {
        **MINIMAL,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": KINESIS_SOURCE,
    }
    [stream] = load_configs(write_body(tmp_path, body))
    assert stream.type == "KinesisStreamAsSource"
    assert stream.kinesis_source is not None
    assert (stream.kinesis_source.stream_name, stream.kinesis_source.region) == (
        "clicks",
        "eu-west-1",
    )


def test_kinesis_source_needs_its_type_and_configuration(tmp_path: Path) -> None:
    body = {**MINIMAL, "KinesisStreamSourceConfiguration": KINESIS_SOURCE}
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == "DeliveryStreamType"
    body = {**MINIMAL, "DeliveryStreamType": "KinesisStreamAsSource"}
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == "KinesisStreamSourceConfiguration"
    assert "required" in problem.allowed
    source = {**KINESIS_SOURCE, "KinesisStreamARN": "arn:x"}
    body = {
        **MINIMAL,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": source,
    }
    problem = only_problem(write_body(tmp_path, body))
    assert problem.field == "KinesisStreamSourceConfiguration.KinesisStreamARN"


# ---- prefix rules ------------------------------------------------------------------------------

S3 = "ExtendedS3DestinationConfiguration"


def test_expression_in_prefix_needs_an_error_output_prefix(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(Prefix="logs/!{timestamp:yyyy}/"))
    assert str(only_problem(path)) == (
        f"{path}: {S3}.ErrorOutputPrefix: is required when Prefix contains expressions"
    )


def test_error_output_prefix_expression_needs_error_output_type(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(ErrorOutputPrefix="errors/!{timestamp:yyyy}/"))
    problem = only_problem(path)
    assert (problem.field, problem.value) == (
        f"{S3}.ErrorOutputPrefix",
        "errors/!{timestamp:yyyy}/",
    )
    assert "!{firehose:error-output-type}" in problem.allowed


def test_bad_timestamp_letter_names_prefix(tmp_path: Path) -> None:
    path = write_body(
        tmp_path,
        with_s3(
            Prefix="y=!{timestamp:yyyq}/", ErrorOutputPrefix="e/!{firehose:error-output-type}/"
        ),
    )
    problem = only_problem(path)
    assert (problem.field, problem.value) == (f"{S3}.Prefix", "y=!{timestamp:yyyq}/")
    assert "`q`" in problem.allowed


@pytest.mark.parametrize(
    ("prefix", "error_prefix", "field"),
    [
        ("!{firehose:error-output-type}/", "e/!{firehose:error-output-type}/", "Prefix"),
        ("logs/!{timestamp", "e/!{firehose:error-output-type}/", "Prefix"),
        ("!{nope:x}/", "e/!{firehose:error-output-type}/", "Prefix"),
        ("p/", "e/!{firehose:error-output-type}/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix"),
        ("p/" * 513, None, "Prefix"),
    ],
)
def test_prefix_rules(tmp_path: Path, prefix: str, error_prefix: str | None, field: str) -> None:
    path = write_body(tmp_path, with_s3(Prefix=prefix, ErrorOutputPrefix=error_prefix))
    assert f"{S3}.{field}" in [p.field for p in problems_of(path)]


def test_good_prefixes_load(tmp_path: Path) -> None:
    path = write_body(
        tmp_path,
        with_s3(
            Prefix="y=!{timestamp:yyyy}/r=!{firehose:random-string}/",
            ErrorOutputPrefix="e/!{firehose:error-output-type}/!{timestamp:dd}/",
        ),
    )
    assert s3_of(load_one(path)).prefix == "y=!{timestamp:yyyy}/r=!{firehose:random-string}/"


def test_prefix_problems_use_the_friendly_names(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, prefix: 'a/!{timestamp:yyyy}/'}\n")
    assert str(only_problem(path)) == (
        f"{path}: s3.error_output_prefix: is required when prefix contains expressions"
    )


def test_prefix_problems_come_with_other_problems(tmp_path: Path) -> None:
    path = write_body(
        tmp_path,
        with_s3(
            Prefix="a/!{timestamp:yyyy}/", BufferingHints={"SizeInMBs": 500, "IntervalInSeconds": 1}
        ),
    )
    assert {p.field for p in problems_of(path)} == {
        f"{S3}.ErrorOutputPrefix",
        f"{HINTS}.SizeInMBs",
    }


# ---- problems: wording, files, several at once ------------------------------------------------


def test_problem_says_file_field_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = write_body(
        tmp_path, with_s3(BufferingHints={"SizeInMBs": 500, "IntervalInSeconds": 60}), "x.yaml"
    )
    problem = only_problem(path)
    assert problem == ConfigProblem(
        str(path), f"{HINTS}.SizeInMBs", 500, "must be less than or equal to 128"
    )
    assert str(problem) == (
        f"{path}: ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs: "
        "got 500, must be less than or equal to 128"
    )


def test_friendly_problem_uses_the_friendly_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "clicks.yaml",
        "name: s\ns3: {bucket: b, buffering: {size_mib: 500, interval_seconds: 9}}\n",
    )
    assert str(only_problem(path)) == (
        f"{path}: s3.buffering.size_mib: got 500, must be less than or equal to 128"
    )


def test_problem_inside_a_list_names_the_item(tmp_path: Path) -> None:
    path = write_body(
        tmp_path, {**MINIMAL, "Tags": [{"Key": "a", "Value": "b"}, {"Key": "c", "Value": 7}]}
    )
    assert str(only_problem(path)) == f"{path}: Tags[1].Value: got 7, must be a string"


def test_wrong_shape_of_a_section(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(BufferingHints=[5, 60]))
    assert str(only_problem(path)) == f"{path}: {HINTS}: must be a mapping of fields, not a list"


def test_every_problem_of_every_file_in_one_error(tmp_path: Path) -> None:
    first = write_body(
        tmp_path,
        {
            "DeliveryStreamName": "bad name",
            S3: {"BucketARN": "nope", "BufferingHints": {"SizeInMBs": 0, "IntervalInSeconds": 901}},
        },
        "a.yaml",
    )
    second = write(
        tmp_path, "b.yaml", "name: ok\ns3: {bucket: b, compression: lz4, time_zone: Nowhere}\n"
    )
    good = write(tmp_path, "c.yaml", "name: fine\ns3: {bucket: b}\n")

    problems = problems_of(tmp_path)

    assert [(p.file, p.field) for p in problems] == [
        (str(first), "DeliveryStreamName"),
        (str(first), f"{S3}.BucketARN"),
        (str(first), f"{HINTS}.SizeInMBs"),
        (str(first), f"{HINTS}.IntervalInSeconds"),
        (str(second), "s3.compression"),
        (str(second), "s3.time_zone"),
    ]
    assert str(good) not in {p.file for p in problems}


def test_config_error_message_has_one_line_per_problem(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: a\ns3: {bucket: b, compression: nope, file_extension: x}\n")
    with pytest.raises(ConfigError) as caught:
        load_configs(tmp_path)
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]
    assert len(caught.value.problems) == 2


def test_duplicate_stream_names_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "name: clicks\ns3: {bucket: b}\n")
    second = write_body(tmp_path, MINIMAL | {"DeliveryStreamName": "clicks"}, "b.yaml")
    assert only_problem(tmp_path) == ConfigProblem(
        str(second), "DeliveryStreamName", "clicks", f"is already defined in {first}"
    )


def test_folder_without_yaml(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "nothing here")
    write(tmp_path, "stream.conf", "{}")
    problem = only_problem(tmp_path)
    assert problem.file == str(tmp_path)
    assert str(problem) == f"{tmp_path}: holds no .yaml, .yml or .json file"
    # `serve` starts on such a folder: its streams come through the API.
    assert load_configs(tmp_path, allow_empty_folder=True) == []


def test_folder_reads_a_json_create_delivery_stream_body(tmp_path: Path) -> None:
    body = {
        "DeliveryStreamName": "from-json",
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"},
    }
    write(tmp_path, "stream.json", json.dumps(body))
    assert [s.name for s in load_configs(tmp_path)] == ["from-json"]


def test_folder_reads_yaml_and_yml_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "name: b\ns3: {bucket: b}\n")
    write(tmp_path, "a.yaml", "name: a\ns3: {bucket: b}\n")
    write(tmp_path, "c.txt", "not: read")
    assert [s.name for s in load_configs(tmp_path)] == ["a", "b"]


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert str(only_problem(missing)) == f"{missing}: does not exist"


def test_invalid_yaml_syntax_is_one_line_with_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "name: a\ns3: {bucket: b\nprefix: x\n")
    problem = only_problem(path)
    assert problem.file == str(path)
    text = str(problem)
    assert text.startswith(f"{path}: is not valid YAML: line ")
    assert "\n" not in text


def test_key_given_twice_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "twice.yaml", "name: a\ns3:\n  bucket: b\n  prefix: x/\n  prefix: y/\n")
    text = str(only_problem(path))
    assert "line 5" in text
    assert "'prefix' is given twice (first on line 4)" in text


def test_key_given_twice_on_one_line_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "twice.yaml", "name: a\ns3: {bucket: b, bucket: c}\n")
    assert "'bucket' is given twice (first on line 2)" in str(only_problem(path))


def test_key_given_twice_in_a_json_body_is_a_problem(tmp_path: Path) -> None:
    body = '{\n\t"DeliveryStreamName": "a",\n\t"DeliveryStreamName": "b"\n}\n'
    path = write(tmp_path, "twice.yaml", body)
    assert only_problem(path).allowed.startswith("is not valid YAML")


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "merge.yaml",
        """\
        name: a
        s3:
          <<: {bucket: b, prefix: base/}
          prefix: own/
        """,
    )
    assert s3_of(load_one(path)).prefix == "own/"


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string")])
def test_document_that_is_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, "list.yaml", text)
    problem = only_problem(path)
    assert (problem.file, problem.field) == (str(path), "")
    assert problem.allowed.startswith("must be a mapping of delivery stream fields")
    assert problem.allowed.endswith(f"not {kind}")


def test_empty_file_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "# nothing yet\n")
    assert str(only_problem(path)) == f"{path}: defines no delivery stream: it is empty"


def test_multi_document_file_defines_several_streams(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "many.yaml",
        f"""\
        name: one
        s3: {{bucket: b}}
        ---
        {textwrap.indent(REQUEST_BODY, "        ").strip()}
        ---
        """,
    )
    assert [s.name for s in load_configs(path)] == ["one", "clickstream"]


def test_problem_in_a_multi_document_file_names_the_document(tmp_path: Path) -> None:
    path = write(tmp_path, "many.yaml", "name: a\ns3: {bucket: b}\n---\nname: b\ns3: {}\n")
    problem = only_problem(path)
    assert problem.document == 2
    assert str(problem) == f"{path}, document 2: s3.bucket: is required"


def test_duplicate_names_within_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "many.yaml", "name: a\ns3: {bucket: b}\n---\nname: a\ns3: {bucket: c}\n")
    assert str(only_problem(path)) == (
        f"{path}, document 2: name: got 'a', is already defined in {path}, document 1"
    )


def test_repository_example_loads() -> None:
    example = Path(__file__).resolve().parent.parent / "configs" / "local-events.yaml"
    assert [s.name for s in load_configs(example)] == ["local-events"]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        (
            {"DataFormatConversionConfiguration": {"OutputFormatConfiguration": {}}},
            "DataFormatConversionConfiguration.OutputFormatConfiguration.Serializer",
            "is required",
        ),
        (
            {"ProcessingConfiguration": {"Processors": [{"Type": "Lambda"}]}},
            "ProcessingConfiguration.Processors[0]",
            "Lambda needs the parameter LambdaArn",
        ),
        ({"RoleARN": "not-an-arn"}, "RoleARN", "arn:aws:iam::"),
        ({"CustomTimeZone": "Etc/GMT+9"}, "CustomTimeZone", "letters, / and _"),
        ({"FileExtension": "."}, "FileExtension", "at least one character after"),
        ({"BucketARN": "arn:aws:s3:::bücket"}, "BucketARN", "arn:aws:s3:::"),
    ],
)
def test_api_model_constraints(
    tmp_path: Path, fields: dict[str, Any], field: str, says: str
) -> None:
    """A section without `Enabled` is on, as AWS's model has it; patterns are the model's."""
    problem = only_problem(write_body(tmp_path, with_s3(**fields)))
    assert problem.field == f"ExtendedS3DestinationConfiguration.{field}"
    assert says in problem.allowed


def test_explicitly_disabled_sections_load(tmp_path: Path) -> None:
    body = with_s3(
        DataFormatConversionConfiguration={"Enabled": False},
        ProcessingConfiguration={"Enabled": False, "Processors": []},
        DynamicPartitioningConfiguration={"Enabled": False},
        RoleARN="arn:aws:iam::123456789012:role/firehose",
    )
    assert load_one(write_body(tmp_path, body)).name


# ---- source-record backup ----------------------------------------------------------------------

BACKUP = f"{S3}.S3BackupConfiguration"
BACKUP_BUCKET = {"BucketARN": "arn:aws:s3:::backups"}


def with_backup(mode: str | None = "Enabled", **fields: Any) -> dict[str, Any]:
    """MINIMAL with S3BackupMode `mode` and an S3BackupConfiguration of BACKUP_BUCKET + fields."""
    return with_s3(S3BackupMode=mode, S3BackupConfiguration={**BACKUP_BUCKET, **fields})


def backup_of(stream: DeliveryStreamConfig) -> S3Configuration:
    backup = s3_of(stream).backup
    assert backup is not None
    return backup


def test_backup_enabled_loads_with_the_plain_s3_defaults(tmp_path: Path) -> None:
    backup = backup_of(load_one(write_body(tmp_path, with_backup())))
    assert backup.bucket == "backups"
    assert (backup.buffering_hints.size_in_mbs, backup.buffering_hints.interval_in_seconds) == (
        5,
        300,
    )
    assert backup.compression_format == "UNCOMPRESSED"
    assert (backup.prefix, backup.error_output_prefix, backup.endpoint_url) == ("", None, None)
    assert (backup.extension, backup.key_time_zone) == ("", None)


def test_backup_takes_the_plain_s3_fields(tmp_path: Path) -> None:
    path = write_body(
        tmp_path,
        with_backup(
            RoleARN="arn:aws:iam::123456789012:role/backup",
            Prefix="raw/!{timestamp:yyyy}/",
            ErrorOutputPrefix="raw-errors/!{firehose:error-output-type}/",
            BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 0},
            CompressionFormat="ZSTD",
            EncryptionConfiguration={"NoEncryptionConfig": "NoEncryption"},
            CloudWatchLoggingOptions={"Enabled": False},
            EndpointURL="file://data/backup",
        ),
    )
    backup = backup_of(load_one(path))
    assert backup.prefix == "raw/!{timestamp:yyyy}/"
    assert backup.buffering_hints.size_in_mbs == 128
    assert backup.extension == ".zst"
    assert backup.endpoint_url == "file://data/backup"


def test_backup_disabled_is_the_default_and_ignores_a_given_configuration(tmp_path: Path) -> None:
    assert s3_of(load_one(write_body(tmp_path, MINIMAL))).backup is None
    stream = load_one(write_body(tmp_path, with_backup("Disabled"), "disabled.yaml"))
    assert s3_of(stream).s3_backup_configuration is not None
    assert s3_of(stream).backup is None


def test_friendly_backup_gives_the_same_model_as_the_api_form(tmp_path: Path) -> None:
    api = write_body(
        tmp_path,
        with_backup(
            Prefix="raw/",
            BufferingHints={"SizeInMBs": 8, "IntervalInSeconds": 30},
            CompressionFormat="GZIP",
            EndpointURL="file://data/s3",
        ),
        "api.yaml",
    )
    friendly = write(
        tmp_path,
        "friendly.yaml",
        """\
        name: s
        s3:
          bucket: b
          backup_mode: enabled
          backup:
            bucket: backups
            prefix: raw/
            buffering: {size_mib: 8, interval_seconds: 30}
            compression: gzip
            endpoint_url: file://data/s3
        """,
    )
    assert load_one(friendly) == load_one(api)


def test_backup_enabled_needs_its_configuration(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_s3(S3BackupMode="Enabled"))
    assert str(only_problem(path)) == (
        f"{path}: {BACKUP}: is required when S3BackupMode is Enabled"
    )
    snake = write(tmp_path, "snake.yaml", "name: s\ns3: {bucket: b, backup_mode: Enabled}\n")
    assert str(only_problem(snake)) == (
        f"{snake}: s3.backup: is required when backup_mode is Enabled"
    )


def test_backup_mode_is_disabled_or_enabled(tmp_path: Path) -> None:
    problem = only_problem(write_body(tmp_path, with_backup("Sometimes")))
    assert (problem.field, problem.value) == (f"{S3}.S3BackupMode", "Sometimes")
    assert problem.allowed == "must be 'Disabled' or 'Enabled'"


@pytest.mark.parametrize(
    ("fields", "field", "value", "allowed"),
    [
        ({"BucketARN": "backups"}, "BucketARN", "backups", "arn:aws:s3:::<bucket>"),
        (
            {"BufferingHints": {"SizeInMBs": 129, "IntervalInSeconds": 60}},
            "BufferingHints.SizeInMBs",
            129,
            "must be less than or equal to 128",
        ),
        (
            {"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 901}},
            "BufferingHints.IntervalInSeconds",
            901,
            "must be less than or equal to 900",
        ),
        ({"CompressionFormat": "gz"}, "CompressionFormat", "gz", "did you mean GZIP?"),
        (
            {"Prefix": "raw/!{timestamp:yyyy}/"},
            "ErrorOutputPrefix",
            None,
            "is required when Prefix contains expressions",
        ),
        ({"RoleARN": "backup-role"}, "RoleARN", "backup-role", "arn:aws:iam::"),
        ({"EndpointURL": "s3.local"}, "EndpointURL", "s3.local", "must start with http://"),
        ({"FileExtension": ".gz"}, "FileExtension", None, "is not a known field"),
    ],
)
def test_every_bad_backup_value_is_named_with_its_file_and_field(
    tmp_path: Path, fields: dict[str, Any], field: str, value: Any, allowed: str
) -> None:
    path = write_body(tmp_path, with_backup(**fields))
    problem = only_problem(path)
    assert (problem.file, problem.field) == (str(path), f"{BACKUP}.{field}")
    if value is not None:
        assert problem.value == value
    assert allowed in problem.allowed


def test_backup_problems_come_with_the_destinations_own(tmp_path: Path) -> None:
    body = with_backup(CompressionFormat="gz")
    body["ExtendedS3DestinationConfiguration"]["BufferingHints"] = {
        "SizeInMBs": 500,
        "IntervalInSeconds": 60,
    }
    assert {p.field for p in problems_of(write_body(tmp_path, body))} == {
        f"{BACKUP}.CompressionFormat",
        f"{HINTS}.SizeInMBs",
    }


def test_friendly_backup_problem_uses_the_friendly_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        "name: s\ns3: {bucket: b, backup_mode: enabled, backup: {bucket: 'a b'}}\n",
    )
    assert str(only_problem(path)).startswith(f"{path}: s3.backup.bucket: got 'a b'")


def test_describe_shows_the_backup_mode_and_bucket(tmp_path: Path) -> None:
    path = write_body(tmp_path, with_backup(Prefix="raw/", CompressionFormat="GZIP"))
    description = s3_of(load_one(path)).description("123456789012")
    extended = description["ExtendedS3DestinationDescription"]
    assert extended["S3BackupMode"] == "Enabled"
    assert extended["S3BackupDescription"] == {
        "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
        "BucketARN": "arn:aws:s3:::backups",
        "Prefix": "raw/",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
        "CompressionFormat": "GZIP",
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": {"Enabled": False},
    }
    assert "S3BackupDescription" not in description["S3DestinationDescription"]


def test_describe_without_backup_shows_the_mode_only(tmp_path: Path) -> None:
    extended = s3_of(load_one(write_body(tmp_path, MINIMAL))).description("123456789012")[
        "ExtendedS3DestinationDescription"
    ]
    assert extended["S3BackupMode"] == "Disabled"
    assert "S3BackupDescription" not in extended
