"""`ProcessingConfiguration`: the API's processor list, each processor's parameters checked.

On the wire every parameter value is a string (`"3"`, `"true"`); the snake_case form may give a
mapping of plain values instead of the list of `{ParameterName, ParameterValue}`:

    processing:
      processors:
        - type: Lambda
          parameters: {LambdaArn: "transforms.examples:to_upper", NumberOfRetries: 3}

The runtime processors live in `transforms/`; here is only what a config may say.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

PROCESSOR_TYPES = (
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
)
ProcessorType = Literal[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
]
# A Lambda function ARN (optionally with a version or alias), or ours: `module:function` or
# `path/to/file.py:function`, a Python callable run as the function.
LAMBDA_ARN = re.compile(r"^arn:[\w-]+:lambda:[\w-]+:\d{12}:function:[\w-]{1,64}(:[\w$-]+)?$")
PYTHON_CALLABLE = re.compile(r"^(?:[\w.]+|[^:]+\.py):[A-Za-z_]\w*$")


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not re.fullmatch(r"\d+", value) or not low <= int(value) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return int(value)

    return parse


def _decimal(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:
            raise ValueError(f"must be a number from {low:g} to {high:g}")
        return number

    return parse


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _boolean(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return value.lower() == "true"


def _base64(value: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64, e.g. Cg== for a newline") from None
    if not decoded:
        raise ValueError("must not be empty")
    return decoded


def _function(value: str) -> str:
    if not (LAMBDA_ARN.match(value) or PYTHON_CALLABLE.match(value)):
        raise ValueError(
            "must be a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>) "
            "or a Python callable as module:function or path/to/file.py:function"
        )
    return value


def _jq_query(value: str) -> str:
    import jq  # the real jq, through its PyPI binding

    try:
        jq.compile(value)
    except ValueError as exc:
        raise ValueError(f"is not a valid jq program: {' '.join(str(exc).split())}") from None
    return value


@dataclass(frozen=True)
class Parameter:
    """One parameter a processor type takes: how to read its string, and its default."""

    parse: Callable[[str], Any]
    default: str | None = None
    required: bool = False


PARAMETERS: dict[str, dict[str, Parameter]] = {
    "RecordDeAggregation": {
        "SubRecordType": Parameter(_one_of("JSON", "DELIMITED"), required=True),
        "Delimiter": Parameter(_base64),
    },
    "Decompression": {"CompressionFormat": Parameter(_one_of("GZIP"), default="GZIP")},
    "CloudWatchLogProcessing": {"DataMessageExtraction": Parameter(_boolean, default="false")},
    "Lambda": {
        "LambdaArn": Parameter(_function, required=True),
        "NumberOfRetries": Parameter(_integer(0, 300), default="3"),
        "RoleArn": Parameter(str),
        "BufferSizeInMBs": Parameter(_decimal(0.2, 3), default="1"),
        "BufferIntervalInSeconds": Parameter(_integer(60, 900), default="60"),
    },
    "MetadataExtraction": {
        "MetadataExtractionQuery": Parameter(_jq_query, required=True),
        "JsonParsingEngine": Parameter(_one_of("JQ-1.6"), default="JQ-1.6"),
    },
    "AppendDelimiterToRecord": {"Delimiter": Parameter(_base64, default="Cg==")},
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProcessorParameter(_Model):
    parameter_name: str = Field(validation_alias=AliasChoices("ParameterName", "name"))
    parameter_value: str = Field(validation_alias=AliasChoices("ParameterValue", "value"))


class ProcessorConfig(_Model):
    """One entry of `Processors`: its `Type` and its parameters, checked against the type."""

    type: ProcessorType = Field(validation_alias=AliasChoices("Type", "type"))
    parameters: tuple[ProcessorParameter, ...] = Field(
        (), validation_alias=AliasChoices("Parameters", "parameters")
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _mapping_form(cls, value: Any) -> Any:
        """`{LambdaArn: x, NumberOfRetries: 3}` (snake_case files) means the API's list."""
        if isinstance(value, dict):
            return [
                {"ParameterName": name, "ParameterValue": _wire_string(given)}
                for name, given in value.items()
            ]
        return value

    @model_validator(mode="after")
    def _check_parameters(self) -> ProcessorConfig:
        known = PARAMETERS[self.type]
        problems = []
        names = [parameter.parameter_name for parameter in self.parameters]
        for name in names:
            if name not in known:
                problems.append(
                    f"{name} is not a parameter of {self.type}; it takes {', '.join(known)}"
                )
            elif names.count(name) > 1:
                problems.append(f"{name} is given more than once")
        for name, spec in known.items():
            if spec.required and name not in names:
                problems.append(f"{self.type} needs the parameter {name}")
        for parameter in self.parameters:
            found = known.get(parameter.parameter_name)
            if found is not None:
                try:
                    found.parse(parameter.parameter_value)
                except ValueError as exc:
                    problems.append(
                        f"{parameter.parameter_name}: got {parameter.parameter_value!r}, {exc}"
                    )
        if self.type == "RecordDeAggregation" and not problems:
            values = self.values()
            if values["SubRecordType"] == "DELIMITED" and values.get("Delimiter") is None:
                problems.append("SubRecordType DELIMITED needs the parameter Delimiter")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return self

    def values(self) -> dict[str, Any]:
        """Every parameter of this type, parsed, defaults filled (None when not given)."""
        given = {p.parameter_name: p.parameter_value for p in self.parameters}
        values: dict[str, Any] = {}
        for name, spec in PARAMETERS[self.type].items():
            text = given.get(name, spec.default)
            values[name] = None if text is None else spec.parse(text)
        return values


def _wire_string(value: Any) -> Any:
    """A plain YAML value as the API's string: 3 -> "3", true -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class ProcessingConfiguration(_Model):
    """`{Enabled, Processors}`; a section without `Enabled` is on, as in AWS's model. Each
    processor type may appear once; they run in Firehose's fixed order, not the listed one."""

    enabled: bool = Field(True, validation_alias=AliasChoices("Enabled", "enabled"))
    processors: tuple[ProcessorConfig, ...] = Field(
        (), validation_alias=AliasChoices("Processors", "processors")
    )

    @field_validator("processors")
    @classmethod
    def _each_type_once(cls, value: tuple[ProcessorConfig, ...]) -> tuple[ProcessorConfig, ...]:
        types = [processor.type for processor in value]
        twice = sorted({kind for kind in types if types.count(kind) > 1})
        if twice:
            raise ValueError(f"each processor type may be given once: {', '.join(twice)} twice")
        return value

    @property
    def active(self) -> tuple[ProcessorConfig, ...]:
        """The processors that run: none when disabled."""
        return self.processors if self.enabled else ()

    def first(self, kind: str) -> ProcessorConfig | None:
        return next((p for p in self.active if p.type == kind), None)

    def description(self) -> dict[str, Any]:
        """The API's shape, as DescribeDeliveryStream shows it."""
        return {
            "Enabled": self.enabled,
            "Processors": [
                {
                    "Type": processor.type,
                    "Parameters": [
                        {"ParameterName": p.parameter_name, "ParameterValue": p.parameter_value}
                        for p in processor.parameters
                    ],
                }
                for processor in self.processors
            ],
        }
