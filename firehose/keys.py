"""S3 object keys: `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`.

Prefixes are parsed and checked once, at config time, into parts; evaluating them per object is
cheap and can fail only on a missing partition key or a result over 512 characters. The
rules are Firehose's; docs/compatibility.md sums them up.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firehose.javatime import (
    Formatter,
    compile_java_pattern,
)

MAX_CONFIGURED_PREFIX = 1024
MAX_EVALUATED_PREFIX = 512
MAX_FILE_EXTENSION = 128
DEFAULT_TIMESTAMP_PATTERN = "yyyy/MM/dd/HH/"
TIME_ZONE_PATTERN = re.compile(r"^[a-zA-Z/_]{1,50}$")
FILE_EXTENSION_CHARACTERS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz!-_.*'()")

TIMESTAMP = "timestamp"
FIREHOSE = "firehose"
PARTITION_KEY_FROM_QUERY = "partitionKeyFromQuery"
PARTITION_KEY_FROM_LAMBDA = "partitionKeyFromLambda"
RANDOM_STRING = "random-string"
ERROR_OUTPUT_TYPE = "error-output-type"
_NAMESPACES = (TIMESTAMP, FIREHOSE, PARTITION_KEY_FROM_QUERY, PARTITION_KEY_FROM_LAMBDA)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyTooLongError(ValueError):
    """An evaluated prefix exceeded 512 characters."""

    retriable = False


class MissingPartitionKeyError(KeyError):
    """A prefix names a partition key the record did not provide."""

    retriable = False

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(name)
        self.namespace = namespace
        self.name = name

    def __str__(self) -> str:
        # KeyError's own str() would print only the quoted key name.
        return f"no value for !{{{self.namespace}:{self.name}}} among the record's partition keys"


class KeyFormatError(ValueError):
    """An `ObjectKeyFormat` was built from options that fail validation."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems = problems


# ---- prefix parsing and validation -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Timestamp:
    formatters: tuple[Formatter, ...]

    def format(self, moment: datetime) -> str:
        return "".join(formatter(moment) for formatter in self.formatters)


@dataclass(frozen=True, slots=True)
class _RandomString:
    pass


@dataclass(frozen=True, slots=True)
class _ErrorOutputType:
    pass


@dataclass(frozen=True, slots=True)
class _PartitionKey:
    namespace: str
    name: str


_DEFAULT_TIMESTAMP = _Timestamp(compile_java_pattern(DEFAULT_TIMESTAMP_PATTERN)[0])
_Part = str | _Timestamp | _RandomString | _ErrorOutputType | _PartitionKey


@dataclass(slots=True)
class _ParsedPrefix:
    parts: list[_Part]
    problems: list[str]
    expression_count: int


def _parse_prefix(text: str) -> _ParsedPrefix:
    """Split a prefix into literal text and expressions, collecting every syntax problem."""
    parsed = _ParsedPrefix([], [], 0)
    literal: list[str] = []
    i = 0
    while (start := text.find("!{", i)) >= 0:
        literal.append(text[i:start])
        end = text.find("}", start)
        body = text[start + 2 : end] if end >= 0 else ""
        if end < 0 or ":" not in body or "!{" in body:
            parsed.problems.append(
                f"`!{{` at position {start + 1} does not start a complete "
                f"!{{namespace:value}} expression"
            )
            literal.append("!{")
            i = start + 2
            continue
        parsed.expression_count += 1
        part = _parse_expression(body, parsed.problems)
        if part is not None:
            parsed.parts.append("".join(literal))
            literal.clear()
            parsed.parts.append(part)
        i = end + 1
    literal.append(text[i:])
    parsed.parts.append("".join(literal))
    parsed.parts = [part for part in parsed.parts if part != ""]
    return parsed


def _parse_expression(
    body: str, problems: list[str]
) -> _Timestamp | _RandomString | _ErrorOutputType | _PartitionKey | None:
    """The part for the body of `!{namespace:value}`, or None after recording a problem."""
    namespace, value = body.split(":", 1)
    expression = f"!{{{body}}}"
    if namespace not in _NAMESPACES:
        problems.append(
            f"unknown namespace `{namespace}` in `{expression}`; use {', '.join(_NAMESPACES)}"
        )
        return None
    if not value:
        problems.append(f"`{expression}` needs a value after the colon")
        return None
    if namespace == TIMESTAMP:
        formatters, pattern_problems = compile_java_pattern(value)
        problems.extend(f"`{expression}`: {problem}" for problem in pattern_problems)
        return None if pattern_problems else _Timestamp(formatters)
    if namespace == FIREHOSE:
        if value == RANDOM_STRING:
            return _RandomString()
        if value == ERROR_OUTPUT_TYPE:
            return _ErrorOutputType()
        problems.append(
            f"unknown firehose value in `{expression}`; use {RANDOM_STRING} or {ERROR_OUTPUT_TYPE}"
        )
        return None
    return _PartitionKey(namespace, value)


def _check_prefix(field: str, text: str, problems: list[tuple[str, str]]) -> _ParsedPrefix:
    if len(text) > MAX_CONFIGURED_PREFIX:
        problems.append(
            (field, f"is {len(text)} characters long, at most {MAX_CONFIGURED_PREFIX} are allowed")
        )
    parsed = _parse_prefix(text)
    problems.extend((field, problem) for problem in parsed.problems)
    return parsed


def _expression_text(part: _PartitionKey) -> str:
    return f"!{{{part.namespace}:{part.name}}}"


def partition_name(namespace: str, key: str) -> str:
    """The name a key has in a stream's partition: `partitionKeyFromQuery:customer_id`."""
    return f"{namespace}:{key}"


def partition_key_maps(
    partition: Iterable[tuple[str, str]] | None,
) -> dict[str, dict[str, str]]:
    """A partition's (name, value) pairs as values by namespace, for `object_key`."""
    maps: dict[str, dict[str, str]] = {PARTITION_KEY_FROM_QUERY: {}, PARTITION_KEY_FROM_LAMBDA: {}}
    for name, value in partition or ():
        namespace, key = name.split(":", 1)
        maps.setdefault(namespace, {})[key] = value
    return maps


def prefix_partition_keys(prefix: str) -> list[tuple[str, str]]:
    """The (namespace, name) of each partition-key expression of `prefix`, first use order."""
    parts = _parse_prefix(prefix or "").parts
    found = [(part.namespace, part.name) for part in parts if isinstance(part, _PartitionKey)]
    return list(dict.fromkeys(found))


def prefix_problems(
    prefix: str, error_output_prefix: str | None, *, dynamic_partitioning: bool | None = False
) -> list[tuple[str, str]]:
    """Every validation problem as (field, message), field being "Prefix" or
    "ErrorOutputPrefix"; [] when valid. Run at create/update time, never at delivery.
    `dynamic_partitioning` None leaves out the rules that depend on it (checked later)."""
    problems: list[tuple[str, str]] = []
    main = _check_prefix("Prefix", prefix or "", problems)
    error = _check_prefix("ErrorOutputPrefix", error_output_prefix or "", problems)
    partition_keys = [part for part in main.parts if isinstance(part, _PartitionKey)]

    if any(isinstance(part, _ErrorOutputType) for part in main.parts):
        problems.append(
            (
                "Prefix",
                f"may not contain !{{firehose:{ERROR_OUTPUT_TYPE}}}; only ErrorOutputPrefix may",
            )
        )
    if dynamic_partitioning is True and not partition_keys:
        problems.append(
            (
                "Prefix",
                f"must use at least one !{{{PARTITION_KEY_FROM_QUERY}:…}} or "
                f"!{{{PARTITION_KEY_FROM_LAMBDA}:…}} expression when dynamic partitioning "
                "is enabled",
            )
        )
    if dynamic_partitioning is False:
        problems.extend(
            ("Prefix", f"`{_expression_text(key)}` needs dynamic partitioning enabled")
            for key in partition_keys
        )
    problems.extend(
        (
            "ErrorOutputPrefix",
            f"may not use `{_expression_text(part)}`; partition keys are for Prefix",
        )
        for part in error.parts
        if isinstance(part, _PartitionKey)
    )
    if not error_output_prefix:
        if main.expression_count:
            problems.append(("ErrorOutputPrefix", "is required when Prefix contains expressions"))
        elif dynamic_partitioning is True:
            problems.append(("ErrorOutputPrefix", "is required with dynamic partitioning"))
    elif error.expression_count and not any(
        isinstance(part, _ErrorOutputType) for part in error.parts
    ):
        problems.append(
            (
                "ErrorOutputPrefix",
                f"must contain !{{firehose:{ERROR_OUTPUT_TYPE}}} when it contains expressions",
            )
        )
    if not problems and not partition_keys:
        problems.extend(_evaluated_length_problems(prefix or ""))
    return problems


# The widest a timestamp gets (a Wednesday in September).
_WIDEST_MOMENT_MS = 1_758_758_399_000  # 2025-09-24T23:59:59Z
# Months, days and weeks with two digits where the widest moment has one (`M`, `w`).
_LAST_MOMENT_OF_A_YEAR_MS = 1_767_225_599_000  # 2025-12-31T23:59:59Z


def _evaluated_length_problems(prefix: str) -> list[tuple[str, str]]:
    """Refuse at config time a Prefix that would evaluate past 512 characters at every delivery,
    which would block the stream for good. Without partition keys an evaluated prefix varies
    only with the time, by a few characters. (An ErrorOutputPrefix that long fails only error
    records, so it is left to delivery time, as AWS does.)"""
    parts = _parse_prefix(prefix).parts
    if not any(isinstance(part, _Timestamp) for part in parts):
        parts.append(_DEFAULT_TIMESTAMP)
    # In UTC the offset letters print `Z`; elsewhere up to `-09:30`.
    for zone in (UTC, timezone(-timedelta(hours=9, minutes=30))):
        moment = datetime.fromtimestamp(_WIDEST_MOMENT_MS / 1000, zone)
        try:
            ObjectKeyFormat._evaluate(parts, moment, "0" * 36, "", {})
        except KeyTooLongError as exc:
            return [("Prefix", str(exc))]
    return []


def fixed_prefix_width(prefix: str) -> int:
    """The most characters `prefix` evaluates to with every partition key empty: with the
    values' lengths added, the longest it can get (checked per record against 512)."""
    parts: list[_Part] = [
        "" if isinstance(part, _PartitionKey) else part for part in _parse_prefix(prefix).parts
    ]
    if not any(isinstance(part, _Timestamp) for part in parts):
        parts.append(_DEFAULT_TIMESTAMP)
    pieces = [piece for piece in parts if piece != ""]
    widths = [
        len(ObjectKeyFormat._evaluate(pieces, moment, "0" * 36, "", {}, limit=None))
        for moment_ms in (_WIDEST_MOMENT_MS, _LAST_MOMENT_OF_A_YEAR_MS)
        for zone in (UTC, timezone(-timedelta(hours=9, minutes=30)))
        for moment in (datetime.fromtimestamp(moment_ms / 1000, zone),)
    ]
    return max(widths)


def file_extension_problems(ext: str | None) -> list[str]:
    """Why a `FileExtension` is refused; [] when valid. Empty or None selects the default."""
    if not ext:
        return []
    problems = []
    if not ext.startswith("."):
        problems.append("must start with '.'")
    elif len(ext) == 1:
        problems.append("needs at least one character after the '.'")
    if len(ext) > MAX_FILE_EXTENSION:
        problems.append(f"is {len(ext)} characters long, at most {MAX_FILE_EXTENSION} are allowed")
    bad = sorted(set(ext) - FILE_EXTENSION_CHARACTERS)
    if bad:
        problems.append(f"contains {''.join(bad)!r}; only 0-9 a-z ! - _ . * ' ( ) are allowed")
    return problems


def time_zone_problems(name: str | None) -> list[str]:
    """Why a `CustomTimeZone` is refused; [] when valid. Empty or None means UTC.

    The API's own pattern first (letters, / and _, at most 50), then the time zone database.
    """
    if not name:
        return []
    if not TIME_ZONE_PATTERN.match(name):
        return [
            "must be an IANA time zone name of letters, / and _ (at most 50), such as Asia/Tokyo"
        ]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ["must be an IANA time zone name such as Asia/Tokyo"]
    return []


# ---- evaluation --------------------------------------------------------------------------------


class ObjectKeyFormat:
    """Names the S3 objects of one destination configuration (one stream version).

    The timestamp in prefix and file name is the oldest record's arrival, in `time_zone` (UTC by
    default). Passing the same `object_id` again gives the same key, random strings included
    (they are then derived from it), so a retried upload overwrites instead of duplicating.
    """

    def __init__(
        self,
        *,
        stream_name: str,
        version: str | int,
        prefix: str = "",
        error_output_prefix: str | None = None,
        extension: str = "",
        time_zone: str | None = None,
        dynamic_partitioning: bool = False,
    ) -> None:
        problems = prefix_problems(
            prefix, error_output_prefix, dynamic_partitioning=dynamic_partitioning
        )
        problems.extend(
            ("FileExtension", problem) for problem in file_extension_problems(extension)
        )
        problems.extend(("CustomTimeZone", problem) for problem in time_zone_problems(time_zone))
        if not stream_name:
            problems.append(("DeliveryStreamName", "must not be empty"))
        if problems:
            raise KeyFormatError(problems)
        self._zone: tzinfo = ZoneInfo(time_zone) if time_zone else UTC
        self._name_start = f"{stream_name}-{version}-"
        self._extension = extension
        self._prefix_parts = _parse_prefix(prefix).parts
        if not any(isinstance(part, _Timestamp) for part in self._prefix_parts):
            self._prefix_parts.append(_DEFAULT_TIMESTAMP)
        if error_output_prefix:
            self._error_parts = _parse_prefix(error_output_prefix).parts
        else:
            # Valid only when Prefix is plain text, so it is used as is.
            self._error_parts = [prefix, _ErrorOutputType(), "/", _DEFAULT_TIMESTAMP]

    def object_key(
        self,
        oldest_arrival_ms: int,
        object_id: str | None = None,
        *,
        partition_keys: Mapping[str, str] | None = None,
        lambda_partition_keys: Mapping[str, str] | None = None,
    ) -> str:
        """Key for delivered data; partition keys fill `partitionKeyFromQuery`/`...FromLambda`."""
        moment = self._moment(oldest_arrival_ms)
        object_id = object_id or str(uuid.uuid4())
        keys = {
            PARTITION_KEY_FROM_QUERY: partition_keys or {},
            PARTITION_KEY_FROM_LAMBDA: lambda_partition_keys or {},
        }
        prefix = self._evaluate(self._prefix_parts, moment, object_id, "", keys)
        return prefix + self._file_name(moment, object_id)

    def error_key(
        self, error_output_type: str, oldest_arrival_ms: int, object_id: str | None = None
    ) -> str:
        """Key for an object of error records of one `error_output_type`, such as
        `processing-failed`."""
        if not error_output_type:
            raise ValueError("error_output_type must not be empty")
        moment = self._moment(oldest_arrival_ms)
        object_id = object_id or str(uuid.uuid4())
        prefix = self._evaluate(self._error_parts, moment, object_id, error_output_type, {})
        return prefix + self._file_name(moment, object_id)

    def _moment(self, epoch_ms: int) -> datetime:
        # Integer arithmetic: a float division could turn .123 seconds into 122999 µs.
        return (_EPOCH + timedelta(milliseconds=epoch_ms)).astimezone(self._zone)

    def _file_name(self, moment: datetime, object_id: str) -> str:
        return (
            f"{self._name_start}{moment.year:04d}-{moment.month:02d}-{moment.day:02d}-"
            f"{moment.hour:02d}-{moment.minute:02d}-{moment.second:02d}-{object_id}"
            f"{self._extension}"
        )

    @staticmethod
    def _evaluate(
        parts: list[_Part],
        moment: datetime,
        object_id: str,
        error_output_type: str,
        partition_keys: Mapping[str, Mapping[str, str]],
        limit: int | None = MAX_EVALUATED_PREFIX,
    ) -> str:
        pieces = []
        random_count = 0
        for part in parts:
            match part:
                case str():
                    pieces.append(part)
                case _Timestamp():
                    pieces.append(part.format(moment))
                case _RandomString():
                    pieces.append(_random_string(object_id, random_count))
                    random_count += 1
                case _ErrorOutputType():
                    pieces.append(error_output_type)
                case _PartitionKey(namespace, name):
                    value = partition_keys[namespace].get(name)
                    if value is None:
                        raise MissingPartitionKeyError(namespace, name)
                    pieces.append(value)
        prefix = "".join(pieces)
        if limit is not None and len(prefix) > limit:
            raise KeyTooLongError(
                f"evaluated prefix is {len(prefix)} characters long, at most "
                f"{MAX_EVALUATED_PREFIX} are allowed: {prefix[:80]}…"
            )
        return prefix


def _random_string(object_id: str, index: int) -> str:
    """11 characters of hex and '-' like `046b6c7f-0b`, a fresh value for each use in a prefix.

    Derived from the object id (itself a random uuid4 unless the caller reuses one), so the
    same object id gives the same key on retry.
    """
    digest = hashlib.sha256(f"{object_id}/{index}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:10]}"
