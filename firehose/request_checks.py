"""Checks of API request members, answered in AWS's validation wording: shared by the data
plane (`firehose.api`) and the control plane (`firehose.control_plane`)."""

from __future__ import annotations

from typing import Any

from firehose.config import STREAM_NAME_CHARACTERS
from firehose.errors import SerializationError

STREAM_TYPES = ("DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource")


def violation(value: Any, path: str, rule: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {rule}"


def blob_repr(size: int) -> str:
    # What AWS's Java service prints for a blob in a validation message.
    return f"java.nio.HeapByteBuffer[pos=0 lim={size} cap={size}]"


def expect_member(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    # bool is an int to Python, not to JSON.
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise SerializationError(f"{key} has the wrong JSON type")
    return value


def limit_problems(limit: int | None) -> list[str]:
    if limit is None:
        return []
    if limit < 1:
        return [violation(limit, "limit", "Member must have value greater than or equal to 1")]
    if limit > 10000:
        return [violation(limit, "limit", "Member must have value less than or equal to 10000")]
    return []


def stream_name_problems(name: Any, path: str = "deliveryStreamName") -> list[str]:
    if name is None:
        return [violation(None, path, "Member must not be null")]
    problems = []
    if len(name) > 64:
        problems.append(violation(name, path, "Member must have length less than or equal to 64"))
    if len(name) < 1:
        problems.append(violation(name, path, "Member must have length greater than or equal to 1"))
    elif not set(name) <= STREAM_NAME_CHARACTERS:
        problems.append(
            violation(name, path, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
        )
    return problems
