"""Delivery-stream definitions: pydantic models and YAML loading.

A file may hold a `CreateDeliveryStream` request body as is (PascalCase API names) or the
friendlier snake_case form; both validate into the same models:

    name: clicks                      # DeliveryStreamName
    s3:                               # ExtendedS3DestinationConfiguration
      bucket: my-bucket               # or bucket_arn / BucketARN
      prefix: clicks/
      buffering: {size_mib: 5, interval_seconds: 60}
      compression: gzip
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from firehose.compression import CODECS
from firehose.keys import file_extension_problems, prefix_problems

STREAM_NAME_PATTERN = r"^[a-zA-Z0-9_.-]{1,64}$"
BUCKET_ARN_PATTERN = re.compile(r"^arn:[^:]*:s3:::([\w.\-]{1,255})$")
UNSUPPORTED_DESTINATIONS = (
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
)
UNSUPPORTED_SOURCES = (
    "KinesisStreamSourceConfiguration",
    "MSKSourceConfiguration",
    "DatabaseSourceConfiguration",
)
# Friendly keys that are not an alias of one field: key -> the API name of the field it fills.
_SHORTHANDS = {"bucket": "BucketARN"}
_STREAM_NAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _FieldProblems(ValueError):
    """Problems a check found in named fields of the model being validated.

    Each is `(field, message)`, `field` being the API name (`Prefix`); the loader reports each one
    under that field, spelled as the user spelled it.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BufferingHints(_Model):
    """Flush at `size_in_mbs` MiB or when the oldest record has waited `interval_in_seconds`."""

    size_in_mbs: int = Field(
        5, ge=1, le=128, strict=True, validation_alias=_alias("SizeInMBs", "size_mib")
    )
    interval_in_seconds: int = Field(
        300,
        ge=0,
        le=900,
        strict=True,
        validation_alias=_alias("IntervalInSeconds", "interval_seconds"),
    )

    @model_validator(mode="before")
    @classmethod
    def _both_or_neither(cls, data: Any) -> Any:
        if isinstance(data, dict):
            has_size = not _spellings_of(cls, "size_in_mbs").isdisjoint(data)
            has_interval = not _spellings_of(cls, "interval_in_seconds").isdisjoint(data)
            if has_size and not has_interval:
                raise _FieldProblems(
                    [("IntervalInSeconds", "is required when SizeInMBs is given: give both")]
                )
            if has_interval and not has_size:
                raise _FieldProblems(
                    [("SizeInMBs", "is required when IntervalInSeconds is given: give both")]
                )
        return data

    @property
    def size_bytes(self) -> int:
        return self.size_in_mbs * 1024 * 1024


def _enabled(section: Any) -> bool:
    return isinstance(section, dict) and section.get("Enabled", section.get("enabled")) in (
        True,
        "true",
        "True",
    )


class ExtendedS3Destination(_Model):
    """`ExtendedS3DestinationConfiguration`: the fields this service acts on, the rest accepted."""

    bucket_arn: str = Field(validation_alias=_alias("BucketARN", "bucket_arn"))
    prefix: str = Field("", validation_alias=_alias("Prefix", "prefix"))
    # Validated even when absent: whether it is required depends on Prefix.
    error_output_prefix: str | None = Field(
        None,
        validate_default=True,
        validation_alias=_alias("ErrorOutputPrefix", "error_output_prefix"),
    )
    buffering_hints: BufferingHints = Field(
        default_factory=BufferingHints, validation_alias=_alias("BufferingHints", "buffering")
    )
    compression_format: str = Field(
        "UNCOMPRESSED", validation_alias=_alias("CompressionFormat", "compression")
    )
    file_extension: str | None = Field(
        None, validation_alias=_alias("FileExtension", "file_extension")
    )
    custom_time_zone: str | None = Field(
        None, validation_alias=_alias("CustomTimeZone", "time_zone")
    )
    endpoint_url: str | None = Field(
        None,
        validation_alias=_alias("EndpointURL", "endpoint_url"),
        description="ours: http(s):// for an S3-compatible store, file://DIR for a local folder",
    )
    # Accepted so that real CreateDeliveryStream bodies load; they change nothing here.
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    encryption_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("EncryptionConfiguration")
    )
    cloud_watch_logging_options: dict[str, Any] | None = Field(
        None, validation_alias=_alias("CloudWatchLoggingOptions")
    )
    # Accepted only while disabled: turning them on changes the output, which is not built yet.
    processing_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("ProcessingConfiguration")
    )
    data_format_conversion_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DataFormatConversionConfiguration")
    )
    dynamic_partitioning_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DynamicPartitioningConfiguration")
    )
    s3_backup_mode: Literal["Disabled"] = Field(
        "Disabled", validation_alias=_alias("S3BackupMode", "backup_mode")
    )
    s3_backup_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("S3BackupConfiguration")
    )

    @model_validator(mode="before")
    @classmethod
    def _friendly_shorthands(cls, data: Any) -> Any:
        """`bucket: NAME` fills BucketARN; `compression` takes any letter case."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # Given together with BucketARN, `bucket` stays put and is reported as a second name.
        if "bucket" in data and (_spellings_of(cls, "bucket_arn") - {"bucket"}).isdisjoint(data):
            bucket = data.pop("bucket")
            data["bucket_arn"] = f"arn:aws:s3:::{bucket}" if isinstance(bucket, str) else bucket
        compression = data.get("compression")
        if isinstance(compression, str):
            by_lower = {name.lower(): name for name in CODECS}
            data["compression"] = by_lower.get(compression.lower(), compression)
        return data

    @field_validator("bucket_arn")
    @classmethod
    def _check_bucket_arn(cls, value: str) -> str:
        if not BUCKET_ARN_PATTERN.match(value):
            raise ValueError(
                "must look like arn:aws:s3:::<bucket>, the bucket name being 1 to 255 of "
                "a-z A-Z 0-9 _ . -"
            )
        return value

    @field_validator("error_output_prefix")
    @classmethod
    def _check_prefixes(cls, value: str | None, info: ValidationInfo) -> str | None:
        prefix = info.data.get("prefix")
        if prefix is None:  # Prefix itself was refused; that is reported already
            return value
        problems = prefix_problems(prefix, value)
        if problems:
            raise _FieldProblems(problems)
        return value

    @field_validator("compression_format")
    @classmethod
    def _check_compression(cls, value: str) -> str:
        if value in CODECS:
            return value
        message = f"must be one of {', '.join(CODECS)}"
        near = [name for name in CODECS if name.lower() == value.lower()]
        if near:
            message += f" (exactly so: did you mean {near[0]}?)"
        raise ValueError(message)

    @field_validator("file_extension")
    @classmethod
    def _check_extension(cls, value: str | None) -> str | None:
        problems = file_extension_problems(value)
        if problems:
            # The loader says which value it got; keys.py says so too.
            raise ValueError("; ".join(p.removeprefix(f"got {value!r}, ") for p in problems))
        return value or None

    @field_validator("custom_time_zone")
    @classmethod
    def _check_time_zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("must be an IANA time zone name such as Asia/Tokyo") from None
        return value or None

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://", "file://")):
            raise ValueError("must start with http://, https:// or file://")
        return value or None

    @field_validator(
        "processing_configuration",
        "data_format_conversion_configuration",
        "dynamic_partitioning_configuration",
    )
    @classmethod
    def _not_enabled_yet(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if _enabled(value):
            raise ValueError("is not supported by this version yet: set Enabled to false")
        return value

    @field_validator("s3_backup_mode", mode="before")
    @classmethod
    def _backup_disabled(cls, value: Any) -> Any:
        if value != "Disabled":
            raise ValueError("must be Disabled: S3BackupMode Enabled is not supported yet")
        return value

    @property
    def bucket(self) -> str:
        match = BUCKET_ARN_PATTERN.match(self.bucket_arn)
        assert match is not None  # checked by the validator
        return match.group(1)

    @property
    def extension(self) -> str:
        return self.file_extension or CODECS[self.compression_format].extension


class DeliveryStreamConfig(_Model):
    """One delivery stream: a `CreateDeliveryStream` body, or its snake_case form."""

    name: str = Field(validation_alias=_alias("DeliveryStreamName", "name"))
    type: Literal["DirectPut"] = Field(
        "DirectPut", validation_alias=_alias("DeliveryStreamType", "type")
    )
    s3: ExtendedS3Destination = Field(
        validation_alias=_alias(
            "ExtendedS3DestinationConfiguration", "S3DestinationConfiguration", "s3"
        )
    )
    tags: list[dict[str, str]] | None = Field(None, validation_alias=_alias("Tags", "tags"))
    direct_put_source_configuration: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DirectPutSourceConfiguration")
    )
    encryption: dict[str, Any] | None = Field(
        None, validation_alias=_alias("DeliveryStreamEncryptionConfigurationInput")
    )

    @model_validator(mode="before")
    @classmethod
    def _one_supported_destination(cls, data: Any) -> Any:
        if isinstance(data, dict):
            destination = (
                "is not supported by this version yet: use ExtendedS3DestinationConfiguration"
            )
            source = "is not supported by this version yet: only DirectPut streams are"
            problems = [(key, destination) for key in UNSUPPORTED_DESTINATIONS if key in data]
            problems += [(key, source) for key in UNSUPPORTED_SOURCES if key in data]
            if problems:
                raise _FieldProblems(problems)
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > 64:
            raise ValueError(f"is {len(value)} characters long, at most 64 are allowed")
        bad = sorted(set(value) - _STREAM_NAME_CHARACTERS)
        if bad:
            raise ValueError(f"contains {''.join(bad)!r}; only a-z A-Z 0-9 _ . - are allowed")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _direct_put_only(cls, value: Any) -> Any:
        if value != "DirectPut":
            raise ValueError(
                "must be DirectPut: KinesisStreamAsSource, MSKAsSource and DatabaseAsSource "
                "are not supported by this version yet"
            )
        return value


# ---- problems ----------------------------------------------------------------------------------

_MISSING: Any = object()


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, said the way a user can act on it.

    `field` is the path as the user wrote it (`s3.buffering.size_mib`); `value` what was there,
    or a private sentinel when nothing was; `document` the 1-based YAML document in a file that
    holds several.
    """

    file: str
    field: str
    value: Any
    allowed: str
    document: int | None = None

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file}, document {self.document}"
        if self.field:
            where = f"{where}: {self.field}"
        if self.value is _MISSING or isinstance(self.value, dict | list):
            return f"{where}: {self.allowed}"
        return f"{where}: got {_shown(self.value)}, {self.allowed}"


def _shown(value: Any, limit: int = 100) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(value)} characters)" if isinstance(value, str) else text


class ConfigError(Exception):
    """Config files that cannot be used; `problems` lists every one found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


_PLAIN_MESSAGES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
}


def error_message(error: ErrorDetails) -> str:
    """What a pydantic error says is allowed, worded for a person: `must be at most 128`."""
    kind = error["type"]
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping of fields, not {_kind(error.get('input'))}"
    if kind == "string_too_long":
        return f"must be at most {error.get('ctx', {}).get('max_length')} characters long"
    message = error["msg"].removeprefix("Value error, ")
    return message.replace("Input should be", "must be").replace("String should", "must")


# ---- naming fields as the user wrote them ------------------------------------------------------


def _spellings(name: str, info: FieldInfo) -> list[str]:
    """Every key that fills a field: its API name, friendly shorthands, other aliases, name."""
    alias = info.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else []
    names = [choice for choice in choices if isinstance(choice, str)]
    shorthands = [short for short, target in _SHORTHANDS.items() if names[:1] == [target]]
    spellings = [*names[:1], *shorthands, *names[1:], name]
    return list(dict.fromkeys(spellings))


def _spellings_of(model: type[BaseModel], name: str) -> set[str]:
    return set(_spellings(name, model.model_fields[name]))


def _field_for(model: type[BaseModel] | None, key: Any) -> tuple[str, list[str]] | None:
    """The field of `model` that `key` fills, with all its spellings; None when none does."""
    if model is not None:
        for name, info in model.model_fields.items():
            spellings = _spellings(name, info)
            if key in spellings:
                return name, spellings
    return None


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model validated at `loc` (a pydantic error location), or None for a plain value."""
    model: type[BaseModel] | None = DeliveryStreamConfig
    for part in loc:
        found = _field_for(model, part)
        if model is None or found is None:
            return None
        annotation = model.model_fields[found[0]].annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return model


def _at(document: Any, loc: tuple[int | str, ...]) -> Any:
    """What the user wrote at `loc`, or _MISSING."""
    for part in loc:
        in_list = isinstance(document, list) and isinstance(part, int) and part < len(document)
        if not in_list and not (isinstance(document, dict) and part in document):
            return _MISSING
        document = document[part]
    return document


def _snake_case(given: Any, reached_by: Any) -> bool:
    """Whether a mapping is written in the friendly form: by its keys, else by its own key."""
    keys = [key for key in given if isinstance(key, str)] if isinstance(given, dict) else []
    if keys:
        return all(key == key.lower() for key in keys)
    return isinstance(reached_by, str) and reached_by == reached_by.lower()


def _written(model: type[BaseModel] | None, api_name: str, given: Any, snake: bool) -> str:
    """The key for the field `api_name` as the user wrote it, or would in their style."""
    found = _field_for(model, api_name)
    if found is None:
        return api_name
    spellings = found[1]
    if isinstance(given, dict):
        for key in spellings:
            if key in given:
                return key
    friendly = [key for key in spellings[1:] if key == key.lower()]
    return friendly[0] if snake and friendly else api_name


def _friendly_text(model: type[BaseModel] | None, message: str, given: Any, snake: bool) -> str:
    """`message` with the API names of `model`'s fields spelled as the user spells them."""
    if model is None:
        return message
    for name, info in model.model_fields.items():
        api_name = _spellings(name, info)[0]
        written = _written(model, api_name, given, snake)
        if written != api_name:
            message = re.sub(rf"(?<![\w!{{:]){re.escape(api_name)}\b", written, message)
    return message


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _problems_from(
    file: str, document: Any, error: PydanticValidationError, number: int | None = None
) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _FieldProblems):
            # Raised for a whole model (a before-validator) or from one of its fields.
            owner_loc = loc if _model_at(loc) is not None else loc[:-1]
            problems += _named_problems(file, document, owner_loc, cause, number)
            continue
        parent_loc, key = loc[:-1], loc[-1] if loc else ""
        model, given = _model_at(parent_loc), _at(document, parent_loc)
        snake = _snake_case(given, parent_loc[-1] if parent_loc else None)
        value = item.get("input", _MISSING)
        if item["type"] == "missing":
            key, value, allowed = _written(model, str(key), given, snake), _MISSING, "is required"
        elif item["type"] == "extra_forbidden":
            value, allowed = _MISSING, _unknown_key_message(model, key, given)
        else:
            allowed = _friendly_text(model, error_message(item), given, snake)
        if key == "bucket_arn" and isinstance(given, dict) and "bucket_arn" not in given:
            # The `bucket` shorthand: speak of the name the user gave, not the ARN made of it.
            key, value = "bucket", given.get("bucket", value)
            if item["type"] == "value_error":
                allowed = "must be a bucket name: 1 to 255 of a-z A-Z 0-9 _ . -"
        problems.append(ConfigProblem(file, _path((*parent_loc, key)), value, allowed, number))
    return problems


def _named_problems(
    file: str,
    document: Any,
    owner_loc: tuple[int | str, ...],
    cause: _FieldProblems,
    number: int | None,
) -> list[ConfigProblem]:
    model, given = _model_at(owner_loc), _at(document, owner_loc)
    snake = _snake_case(given, owner_loc[-1] if owner_loc else None)
    problems = []
    for api_name, message in cause.problems:
        key = _written(model, api_name, given, snake)
        value = given.get(key, _MISSING) if isinstance(given, dict) else _MISSING
        text = _friendly_text(model, message, given, snake)
        problems.append(ConfigProblem(file, _path((*owner_loc, key)), value, text, number))
    return problems


def _unknown_key_message(model: type[BaseModel] | None, key: Any, given: Any) -> str:
    found = _field_for(model, key)
    others = [
        name
        for name in (found[1] if found else [])
        if name != key and isinstance(given, dict) and name in given
    ]
    if others:
        return f"names the same field as {others[0]}: give only one of them"
    known = [
        spelling
        for name, info in (model.model_fields.items() if model else [])
        for spelling in _spellings(name, info)
    ]
    near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
    return "is not a known field" + (f" (did you mean {near[0]}?)" if near else "")


# ---- loading -----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<` keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                given_before = key in first_line
            except TypeError:  # unhashable: SafeLoader reports it
                continue
            if given_before:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is given twice (first on line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"is not valid YAML: {' '.join(str(exc).split())}"
    mark = exc.problem_mark
    text = f"is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        text += f" ({exc.context} on line {exc.context_mark.line + 1})"
    return text


def config_files(path: Path) -> list[Path]:
    """The YAML files a `--config` path names: the file itself, or a folder's *.yaml / *.yml."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def _documents(file: Path) -> list[Any]:
    """The YAML documents of `file`; a JSON body that YAML refuses (tab indents) also loads."""
    content = file.read_bytes()
    try:
        return list(yaml.load_all(content, Loader=_UniqueKeyLoader))
    except yaml.YAMLError:
        try:
            return [json.loads(content, object_pairs_hook=_unique_keys)]
        except ValueError:
            pass
        raise


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise ValueError("a key is given twice")
    return mapping


def _file_problem(file: Path, allowed: str, number: int | None = None) -> ConfigProblem:
    return ConfigProblem(str(file), "", _MISSING, allowed, number)


def load_configs(path: Path) -> list[DeliveryStreamConfig]:
    """Every delivery stream defined under `path`; raises ConfigError naming every problem."""
    if not path.exists():
        raise ConfigError([_file_problem(path, "does not exist")])
    try:
        files = config_files(path)
    except OSError as exc:
        raise ConfigError([_file_problem(path, f"cannot be read: {exc.strerror}")]) from None
    if not files:
        raise ConfigError([_file_problem(path, "holds no .yaml or .yml file")])
    problems: list[ConfigProblem] = []
    streams: list[DeliveryStreamConfig] = []
    defined_in: dict[str, str] = {}
    for file in files:
        try:
            documents = _documents(file)
        except OSError as exc:
            problems.append(_file_problem(file, f"cannot be read: {exc.strerror or exc}"))
            continue
        except yaml.YAMLError as exc:
            problems.append(_file_problem(file, _yaml_problem(exc)))
            continue
        documents = [document for document in documents if document is not None]
        if not documents:
            problems.append(_file_problem(file, "defines no delivery stream: it is empty"))
        for index, document in enumerate(documents, start=1):
            number = index if len(documents) > 1 else None
            where = str(file) if number is None else f"{file}, document {number}"
            if not isinstance(document, dict):
                problems.append(
                    _file_problem(
                        file,
                        f"must be a mapping of delivery stream fields (DeliveryStreamName, "
                        f"ExtendedS3DestinationConfiguration, …), not {_kind(document)}",
                        number,
                    )
                )
                continue
            try:
                stream = DeliveryStreamConfig.model_validate(document)
            except PydanticValidationError as exc:
                problems.extend(_problems_from(str(file), document, exc, number))
                continue
            if stream.name in defined_in:
                key = _written(DeliveryStreamConfig, "DeliveryStreamName", document, False)
                allowed = f"is already defined in {defined_in[stream.name]}"
                problems.append(ConfigProblem(str(file), key, stream.name, allowed, number))
                continue
            defined_in[stream.name] = where
            streams.append(stream)
    if problems:
        raise ConfigError(problems)
    return streams
