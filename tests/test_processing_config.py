"""ProcessingConfiguration: processor types, their string parameters, checked at config time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from firehose.processing_config import ProcessingConfiguration, ProcessorConfig


def processor(kind: str, **parameters: str) -> dict[str, Any]:
    return {
        "Type": kind,
        "Parameters": [{"ParameterName": k, "ParameterValue": v} for k, v in parameters.items()],
    }


def test_api_shape_with_string_values_and_defaults() -> None:
    config = ProcessingConfiguration.model_validate(
        {
            "Enabled": True,
            "Processors": [
                processor("Lambda", LambdaArn="arn:aws:lambda:us-east-1:123456789012:function:f"),
                processor("AppendDelimiterToRecord"),
            ],
        }
    )
    lambda_config = config.first("Lambda")
    assert lambda_config is not None
    assert lambda_config.values() == {
        "LambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "NumberOfRetries": 3,
        "RoleArn": None,
        "BufferSizeInMBs": 1.0,
        "BufferIntervalInSeconds": 60,
    }
    delimiter = config.first("AppendDelimiterToRecord")
    assert delimiter is not None and delimiter.values() == {"Delimiter": b"\n"}


def test_snake_case_mapping_of_plain_values() -> None:
    config = ProcessingConfiguration.model_validate(
        {
            "processors": [
                {"type": "Lambda", "parameters": {"LambdaArn": "mod.sub:fn", "NumberOfRetries": 0}},
                {"type": "CloudWatchLogProcessing", "parameters": {"DataMessageExtraction": True}},
            ]
        }
    )
    assert config.enabled
    assert [p.type for p in config.active] == ["Lambda", "CloudWatchLogProcessing"]
    assert config.processors[0].values()["NumberOfRetries"] == 0
    assert config.processors[1].values() == {"DataMessageExtraction": True}


def test_disabled_section_runs_nothing() -> None:
    config = ProcessingConfiguration.model_validate(
        {"Enabled": False, "Processors": [processor("Decompression")]}
    )
    assert config.active == ()


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        (processor("Lambda"), "Lambda needs the parameter LambdaArn"),
        (processor("Lambda", LambdaArn="not a function"), "must be a Lambda function ARN"),
        (processor("Lambda", LambdaArn="m:f", NumberOfRetries="301"), "from 0 to 300"),
        (processor("Lambda", LambdaArn="m:f", BufferSizeInMBs="5"), "from 0.2 to 3"),
        (processor("Lambda", LambdaArn="m:f", BufferIntervalInSeconds="10"), "from 60 to 900"),
        (processor("Lambda", LambdaArn="m:f", Delimiter="Cg=="), "not a parameter of Lambda"),
        (processor("RecordDeAggregation", SubRecordType="XML"), "one of JSON, DELIMITED"),
        (processor("RecordDeAggregation", SubRecordType="DELIMITED"), "needs the parameter Delim"),
        (processor("AppendDelimiterToRecord", Delimiter="%%%"), "must be base64"),
        (processor("Decompression", CompressionFormat="ZIP"), "must be one of GZIP"),
        (processor("CloudWatchLogProcessing", DataMessageExtraction="yes"), "true or false"),
        (processor("MetadataExtraction", MetadataExtractionQuery="{a: .b"), "not a valid jq"),
        (
            processor(
                "MetadataExtraction", MetadataExtractionQuery="{a:.a}", JsonParsingEngine="x"
            ),
            "one of JQ-1.6",
        ),
    ],
)
def test_bad_parameters_are_named(given: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ProcessorConfig.model_validate(given)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="Lambda"):
        ProcessorConfig.model_validate(processor("Transmogrify"))


def test_jq_query_is_compiled_by_the_real_jq() -> None:
    config = ProcessorConfig.model_validate(
        processor(
            "MetadataExtraction",
            MetadataExtractionQuery='{customer_id: .customer_id, year: .ts | strftime("%Y")}',
        )
    )
    assert config.values()["JsonParsingEngine"] == "JQ-1.6"
