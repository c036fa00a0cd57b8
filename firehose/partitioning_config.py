"""`DynamicPartitioningConfiguration` and the rules that tie it to the prefix and processors.

With it enabled, each `!{partitionKeyFromQuery:k}` of `Prefix` needs a `MetadataExtraction`
processor whose query builds `k`, and each `!{partitionKeyFromLambda:k}` a `Lambda` processor;
the buffer is 64 to 128 MiB (128 by default) and not zero-interval. Checked at config time.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from firehose.jq_query import read_object_query
from firehose.keys import (
    PARTITION_KEY_FROM_LAMBDA,
    PARTITION_KEY_FROM_QUERY,
    prefix_partition_keys,
)
from firehose.processing_config import ProcessingConfiguration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PartitioningRetryOptions(_Model):
    """`RetryOptions` of dynamic partitioning: accepted and described (see docs)."""

    duration_in_seconds: int = Field(
        300,
        ge=0,
        le=7200,
        strict=True,
        validation_alias=AliasChoices("DurationInSeconds", "duration_seconds"),
    )


class DynamicPartitioningConfiguration(_Model):
    """`{Enabled, RetryOptions}`; a section without `Enabled` is on, as in AWS's model."""

    enabled: bool = Field(True, validation_alias=AliasChoices("Enabled", "enabled"))
    retry_options: PartitioningRetryOptions = Field(
        default_factory=PartitioningRetryOptions,
        validation_alias=AliasChoices("RetryOptions", "retry"),
    )

    def description(self) -> dict[str, Any]:
        return {
            "Enabled": self.enabled,
            "RetryOptions": {"DurationInSeconds": self.retry_options.duration_in_seconds},
        }


def enabled_in(data: dict[str, Any]) -> bool:
    """Whether a raw destination section turns dynamic partitioning on (before validation)."""
    section = data.get("DynamicPartitioningConfiguration", data.get("dynamic_partitioning"))
    if not isinstance(section, dict):
        return False
    flag = section.get("Enabled", section.get("enabled", True))
    return flag not in (False, "false", "False")


def key_source_problems(
    prefix: str, processing: ProcessingConfiguration | None
) -> list[tuple[str, str]]:
    """(field, problem) for each partition key of `prefix` that no processor can produce."""
    problems: list[tuple[str, str]] = []
    extraction = processing.first("MetadataExtraction") if processing else None
    has_lambda = processing is not None and processing.first("Lambda") is not None
    query_keys: set[str] | None = None
    if extraction is not None:
        shape = read_object_query(extraction.values()["MetadataExtractionQuery"])
        query_keys = None if shape is None else set(shape.keys)
    for namespace, name in prefix_partition_keys(prefix):
        expression = f"!{{{namespace}:{name}}}"
        if namespace == PARTITION_KEY_FROM_LAMBDA and not has_lambda:
            problems.append(("Prefix", f"`{expression}` needs a Lambda processor"))
        elif namespace == PARTITION_KEY_FROM_QUERY:
            if extraction is None:
                problems.append(("Prefix", f"`{expression}` needs a MetadataExtraction processor"))
            elif query_keys is not None and name not in query_keys:
                built = ", ".join(sorted(query_keys)) or "none"
                problems.append(
                    (
                        "Prefix",
                        f"`{expression}`: the MetadataExtractionQuery builds no key {name!r} "
                        f"(it builds {built})",
                    )
                )
    return list(dict.fromkeys(problems))
