"""The API model's constraints on control-plane requests: what AWS answers with a
ValidationException (lengths, patterns, enums, ranges) before it looks at anything else."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from firehose.request_checks import violation

KEY_TYPES = ("AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK")
KEY_ARN_PATTERN = r"arn:.*:kms:[a-zA-Z0-9\-]+:\d{12}:(key|alias)/[a-zA-Z_0-9+=,.@\-_/]+"
TAG_PATTERN = r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$"
TAG_VALUE_PATTERN = r"^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$"
MAX_TAGS = 50
VERSION_ID_PATTERN = "[0-9]+"
DESTINATION_ID_PATTERN = "[a-zA-Z0-9-]+"
_TAG_PUNCTUATION = frozenset("_.:/=+-@%")

# pydantic's range and length errors, as the API model words the same constraint.
_MODEL_RULES = {
    "less_than_equal": ("le", "Member must have value less than or equal to {}"),
    "greater_than_equal": ("ge", "Member must have value greater than or equal to {}"),
    "string_too_long": ("max_length", "Member must have length less than or equal to {}"),
    "string_too_short": ("min_length", "Member must have length greater than or equal to {}"),
}


def _tag_text_ok(text: str) -> bool:
    """Letters, separators, digits and `_ . : / = + - @ %`."""
    return all(char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN" for char in text)


def length_problems(value: str, path: str, low: int, high: int) -> list[str]:
    if len(value) > high:
        return [violation(value, path, f"Member must have length less than or equal to {high}")]
    if len(value) < low:
        return [violation(value, path, f"Member must have length greater than or equal to {low}")]
    return []


def pattern_problems(value: str, path: str, pattern: str, shown: str | None = None) -> list[str]:
    if re.fullmatch(pattern, value):
        return []
    rule = f"Member must satisfy regular expression pattern: {shown or pattern}"
    return [violation(value, path, rule)]


def tag_key_problems(key: Any, path: str) -> list[str]:
    if key is None:
        return [violation(None, path, "Member must not be null")]
    if not isinstance(key, str):
        return [violation(key, path, "Member must be a string")]
    problems = length_problems(key, path, 1, 128)
    if key.startswith("aws:") or not _tag_text_ok(key):
        rule = f"Member must satisfy regular expression pattern: {TAG_PATTERN}"
        problems.append(violation(key, path, rule))
    return problems


def tags_problems(tags: Any, path: str = "tags") -> list[str]:
    """A `Tags` list: 1 to 50 of {Key 1-128, Value 0-256}, both of the tag character set."""
    if not isinstance(tags, list):
        return [violation(tags, path, "Member must be a list")]
    problems = []
    if not tags:
        problems.append(violation("[]", path, "Member must have length greater than or equal to 1"))
    if len(tags) > MAX_TAGS:
        rule = f"Member must have length less than or equal to {MAX_TAGS}"
        problems.append(violation(f"[{len(tags)} tags]", path, rule))
    for index, tag in enumerate(tags, 1):
        member = f"{path}.{index}.member"
        if not isinstance(tag, dict):
            problems.append(violation(tag, member, "Member must be a structure"))
            continue
        problems += tag_key_problems(tag.get("Key"), f"{member}.key")
        value = tag.get("Value")
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(violation(value, f"{member}.value", "Member must be a string"))
            continue
        problems += length_problems(value, f"{member}.value", 0, 256)
        if not _tag_text_ok(value):
            rule = f"Member must satisfy regular expression pattern: {TAG_VALUE_PATTERN}"
            problems.append(violation(value, f"{member}.value", rule))
    return problems


def encryption_input_problems(given: Any, path: str) -> list[str]:
    """A `DeliveryStreamEncryptionConfigurationInput`: KeyType from the enum, KeyARN a KMS ARN."""
    if not isinstance(given, dict):
        return [violation(given, path, "Member must be a structure")]
    problems = []
    key_type = given.get("KeyType")
    if key_type is None:
        problems.append(violation(None, f"{path}.keyType", "Member must not be null"))
    elif key_type not in KEY_TYPES:
        rule = f"Member must satisfy enum value set: [{', '.join(KEY_TYPES)}]"
        problems.append(violation(key_type, f"{path}.keyType", rule))
    key_arn = given.get("KeyARN")
    if key_arn is not None:
        if not isinstance(key_arn, str):
            return [*problems, violation(key_arn, f"{path}.keyARN", "Member must be a string")]
        problems += length_problems(key_arn, f"{path}.keyARN", 1, 512)
        problems += pattern_problems(key_arn, f"{path}.keyARN", KEY_ARN_PATTERN)
    return problems


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def model_violations(error: PydanticValidationError) -> list[str]:
    """The ranges and lengths a request body broke, said as the API model's ValidationException
    says them (`extendedS3DestinationConfiguration.bufferingHints.sizeInMBs`). Only for fields
    given by their API names; anything else is for InvalidArgumentException to name."""
    problems = []
    for item in error.errors():
        rule = _MODEL_RULES.get(item["type"])
        loc = item["loc"]
        api_names = all(isinstance(part, int) or part[:1].isupper() for part in loc)
        if rule is None or not loc or not api_names:
            continue
        limit = item.get("ctx", {}).get(rule[0])
        path = ".".join(
            f"{part + 1}.member" if isinstance(part, int) else _lower_camel(part) for part in loc
        )
        problems.append(violation(item.get("input"), path, rule[1].format(limit)))
    return problems
