"""DynamicPartitioningConfiguration at config time: the prefix, processor and buffering rules,
and the keys read from a MetadataExtractionQuery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firehose.jq_query import read_object_query
from tests.test_config import S3, load_one, problems_of, s3_of, with_s3, write_body

ERRORS = "errors/!{firehose:error-output-type}/"
PARTITIONED = "customer=!{partitionKeyFromQuery:customer}/"


def extraction(query: str) -> dict[str, Any]:
    return {
        "Type": "MetadataExtraction",
        "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
        ],
    }


LAMBDA = {
    "Type": "Lambda",
    "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": "tests.handlers:identity"}],
}


def partitioned(*processors: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return with_s3(
        **{
            "Prefix": PARTITIONED,
            "ErrorOutputPrefix": ERRORS,
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {"Enabled": True, "Processors": list(processors)},
            **fields,
        }
    )


def test_a_partitioned_stream_loads_with_aws_defaults(tmp_path: Path) -> None:
    s3 = s3_of(load_one(write_body(tmp_path, partitioned(extraction("{customer: .c.id}")))))
    assert s3.partitioned
    assert s3.buffering_hints.size_in_mbs == 128
    assert s3.buffering_hints.interval_in_seconds == 300
    assert s3.dynamic_partitioning_configuration is not None
    assert s3.dynamic_partitioning_configuration.retry_options.duration_in_seconds == 300
    described = s3.description("123456789012")["ExtendedS3DestinationDescription"]
    assert described["DynamicPartitioningConfiguration"] == {
        "Enabled": True,
        "RetryOptions": {"DurationInSeconds": 300},
    }


def test_friendly_form(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\n"
        "s3:\n"
        "  bucket: b\n"
        "  prefix: 'k=!{partitionKeyFromLambda:k}/'\n"
        "  error_output_prefix: 'e/!{firehose:error-output-type}/'\n"
        "  dynamic_partitioning: {enabled: true, retry: {duration_seconds: 60}}\n"
        "  processing: {processors: [{type: Lambda, parameters: {LambdaArn: 'm:f'}}]}\n"
    )
    s3 = s3_of(load_one(path))
    assert s3.partitioned
    assert s3.dynamic_partitioning_configuration is not None
    assert s3.dynamic_partitioning_configuration.retry_options.duration_in_seconds == 60


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (partitioned(extraction("{customer: .c}"), Prefix="p/"), "Prefix", "at least one"),
        (
            partitioned(extraction("{customer: .c}"), ErrorOutputPrefix=None),
            "ErrorOutputPrefix",
            "required",
        ),
        (partitioned(), "Prefix", "needs a MetadataExtraction processor"),
        (partitioned(extraction("{id: .c}")), "Prefix", "builds no key 'customer' (it builds id)"),
        (
            partitioned(extraction("{id: .c}"), Prefix="k=!{partitionKeyFromLambda:k}/"),
            "Prefix",
            "needs a Lambda processor",
        ),
        (
            partitioned(
                extraction("{customer: .c}"),
                BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 60},
            ),
            "BufferingHints",
            "64 to 128",
        ),
        (
            partitioned(
                extraction("{customer: .c}"),
                BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
            ),
            "BufferingHints",
            "zero buffering",
        ),
        (
            partitioned(
                extraction("{customer: .c}"),
                DynamicPartitioningConfiguration={"RetryOptions": {"DurationInSeconds": 7201}},
            ),
            "DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds",
            "7200",
        ),
        (
            partitioned(
                extraction("{customer: .c}"), DynamicPartitioningConfiguration={"Enabled": False}
            ),
            "Prefix",
            "needs dynamic partitioning enabled",
        ),
        (
            with_s3(Prefix=PARTITIONED, ErrorOutputPrefix=ERRORS),
            "Prefix",
            "needs dynamic partitioning enabled",
        ),
    ],
)
def test_rules(tmp_path: Path, body: dict[str, Any], field: str, says: str) -> None:
    problems = problems_of(write_body(tmp_path, body))
    assert any(p.field == f"{S3}.{field}" and says in p.allowed for p in problems), [
        str(p) for p in problems
    ]


@pytest.mark.parametrize(
    "query",
    [
        "{(.k): .v}",  # computed keys: known per record only
        "def f: .c; {customer: f}",
        "{customer: .c} | with_entries(.key |= ascii_downcase)",
    ],
)
def test_keys_not_readable_from_the_query_are_left_to_delivery(tmp_path: Path, query: str) -> None:
    assert s3_of(load_one(write_body(tmp_path, partitioned(extraction(query))))).partitioned


def test_lambda_and_query_keys_together(tmp_path: Path) -> None:
    body = partitioned(
        extraction('{customer: .c, "year": .t[0:4]}'),
        LAMBDA,
        Prefix="y=!{partitionKeyFromQuery:year}/c=!{partitionKeyFromQuery:customer}/"
        "r=!{partitionKeyFromLambda:region}/",
    )
    assert s3_of(load_one(write_body(tmp_path, body))).partitioned


@pytest.mark.parametrize(
    ("query", "keys", "paths"),
    [
        ("{a: .a}", ("a",), (("a",),)),
        ("{ a : .x.y , b:.z }", ("a", "b"), (("x", "y"), ("z",))),
        ('{"a b": ."c d".e, c}', ("a b", "c"), (("c d", "e"), ("c",))),
        ('{"\\u00e9": .x}', ("é",), (("x",),)),
        ("{a: .b # comment, x: 1\n}", ("a",), (("b",),)),
        ('{a: "x,y:z", b: (.c, .d)}', ("a", "b"), (None, None)),
        ('{a: "\\(.x, .y):", b: [.c, .d][0]}', ("a", "b"), (None, None)),
        ("{a: .x | if . then 1, 2 else 3 end, b: .y}", ("a", "b"), (None, ("y",))),
        ("{a: {b: .c, d: .e}, f: .g}", ("a", "f"), (None, ("g",))),
        ("{$__loc__, a: .a?}", ("__loc__", "a"), (None, None)),
        ('{a: .x.y | strftime("%Y")}', ("a",), (None,)),
    ],
)
def test_object_query_keys(
    query: str, keys: tuple[str, ...], paths: tuple[tuple[str, ...] | None, ...]
) -> None:
    shape = read_object_query(query)
    assert shape is not None
    assert (shape.keys, shape.paths) == (keys, paths)


@pytest.mark.parametrize(
    "query",
    [
        "{(.k): 1}",
        '{"a\\(.x)": 1}',
        "def f: 1; {a: f}",
        "{a: 1} | .",
        ". as $r | {a: $r}",
        "{if: 1, b: 2}",
        "{a: 1",
        "{@base64: 1}",
        "[{a: 1}]",
    ],
)
def test_queries_whose_keys_are_not_read(query: str) -> None:
    assert read_object_query(query) is None
