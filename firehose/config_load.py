"""Reading delivery-stream YAML files, and saying what is wrong with them.

Every problem of every file is collected and reported at once, one line each, naming the file,
the field as the user spelled it (PascalCase API name or snake_case), the value and what is allowed.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from firehose.choices import NotOneOf, closest
from firehose.config import (
    SECRET_KEYS,
    DeliveryStreamConfig,
    FieldProblems,
    field_spellings,
)

# ---- problems ----------------------------------------------------------------------------------

# JSON is YAML too: a CreateDeliveryStream body saved from the CLI loads as is.
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
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
        if self.field.rsplit(".", 1)[-1] in SECRET_KEYS:  # a token is never echoed back
            return f"{where}: got a value that is not allowed, {self.allowed}"
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


def _field_for(model: type[BaseModel] | None, key: Any) -> tuple[str, list[str]] | None:
    """The field of `model` that `key` fills, with all its spellings; None when none does."""
    if model is not None:
        for name, info in model.model_fields.items():
            spellings = field_spellings(name, info)
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
        model = _model_in(model.model_fields[found[0]].annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: `Model` or `Model | None`; None for plain values."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _at(document: Any, loc: tuple[int | str, ...]) -> Any:
    """What the user wrote at `loc`, or _MISSING."""
    for part in loc:
        in_list = isinstance(document, list) and isinstance(part, int) and part < len(document)
        if not in_list and not (isinstance(document, dict) and part in document):
            return _MISSING
        document = document[part]
    return document


def _snake_case(model: type[BaseModel] | None, given: Any, reached_by: Any) -> bool:
    """Whether a mapping is written in the friendly form: by the keys that name a field (a
    misspelt one says nothing of the style), else by the mapping's own key."""
    keys = [key for key in given if isinstance(key, str)] if isinstance(given, dict) else []
    known = [key for key in keys if _field_for(model, key) is not None]
    if known or keys:
        return all(key == key.lower() for key in known or keys)
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
        api_name = field_spellings(name, info)[0]
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
        if isinstance(cause, FieldProblems):
            # Raised for a whole model (a before-validator) or from one of its fields.
            owner_loc = loc if _model_at(loc) is not None else loc[:-1]
            problems += _named_problems(file, document, owner_loc, cause, number)
            continue
        parent_loc, key = loc[:-1], loc[-1] if loc else ""
        model, given = _model_at(parent_loc), _at(document, parent_loc)
        snake = _snake_case(model, given, parent_loc[-1] if parent_loc else None)
        value = item.get("input", _MISSING)
        if item["type"] == "missing":
            key, value, allowed = _written(model, str(key), given, snake), _MISSING, "is required"
        elif item["type"] == "extra_forbidden":
            value, allowed = _MISSING, _unknown_key_message(model, key, given, snake)
        elif isinstance(cause, NotOneOf):
            allowed = cause.text(str.lower) if _snake_key(key) else str(cause)
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
    cause: FieldProblems,
    number: int | None,
) -> list[ConfigProblem]:
    model, given = _model_at(owner_loc), _at(document, owner_loc)
    snake = _snake_case(model, given, owner_loc[-1] if owner_loc else None)
    problems = []
    for api_name, message in cause.problems:
        key = _written(model, api_name, given, snake)
        value = given.get(key, _MISSING) if isinstance(given, dict) else _MISSING
        text = _friendly_text(model, message, given, snake)
        problems.append(ConfigProblem(file, _path((*owner_loc, key)), value, text, number))
    return problems


def _snake_key(key: Any) -> bool:
    """Whether the user wrote this key in the friendly form, whose values are lower case too."""
    return isinstance(key, str) and key == key.lower()


def _unknown_key_message(model: type[BaseModel] | None, key: Any, given: Any, snake: bool) -> str:
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
        for spelling in field_spellings(name, info)
    ]
    # The spelling style of the file first: `S3` in a snake_case file means `s3`.
    in_style = [spelling for spelling in known if _snake_key(spelling) == snake]
    near = closest(str(key), in_style) or closest(str(key), known)
    return "is not a known field" + (f" (did you mean {near}?)" if near else "")


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
    """The files a `--config` path names: the file itself, or a folder's *.yaml, *.yml, *.json."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file())
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


# A check a config must pass beyond its model (say, that a transform's callable imports): the
# problems it finds, as (field path in API names, what is wrong).
ConfigCheck = Callable[[DeliveryStreamConfig], list[tuple[str, str]]]


def load_configs(
    path: Path, checks: Sequence[ConfigCheck] = (), *, allow_empty_folder: bool = False
) -> list[DeliveryStreamConfig]:
    """Every delivery stream defined under `path`; raises ConfigError naming every problem.

    `checks` run on each stream that validated; the caller supplies them, so the core does not
    have to import what they check (transforms, say). With `allow_empty_folder`, a folder with
    no config file defines no stream (a service whose streams all come through the API)."""
    if not path.exists():
        raise ConfigError([_file_problem(path, "does not exist")])
    try:
        files = config_files(path)
    except OSError as exc:
        raise ConfigError([_file_problem(path, f"cannot be read: {exc.strerror}")]) from None
    if not files:
        if allow_empty_folder and path.is_dir():
            return []
        raise ConfigError([_file_problem(path, "holds no .yaml, .yml or .json file")])
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
            found = [problem for check in checks for problem in check(stream)]
            if found:
                problems += [
                    ConfigProblem(str(file), field, _MISSING, message, number)
                    for field, message in found
                ]
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


def validate_request(
    document: dict[str, Any], label: str, checks: Sequence[ConfigCheck] = ()
) -> DeliveryStreamConfig:
    """`document`, an API request body, as a stream; raises ConfigError naming every problem
    under `label` (the operation) the way a config file's problems are named."""
    try:
        stream = DeliveryStreamConfig.model_validate(document)
    except PydanticValidationError as exc:
        raise ConfigError(_problems_from(label, document, exc)) from None
    found = [problem for check in checks for problem in check(stream)]
    if found:
        raise ConfigError([ConfigProblem(label, f, _MISSING, message) for f, message in found])
    return stream
