"""What a Redshift destination's config says about its warehouse: the JDBC URL and `CopyCommand`.

The same section loads into Amazon Redshift (`jdbc:redshift://`, COPY from S3 by manifest) or
into PostgreSQL (`jdbc:postgresql://`, ours: COPY FROM STDIN), which understands only some of
Redshift's COPY options; those are parsed here so that a config PostgreSQL cannot honour is
refused when it is loaded, not at the first delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

DEFAULT_PORTS = {"redshift": 5439, "postgresql": 5432}
# libpq settings a `jdbc:postgresql://…?k=v` URL may pass on; credentials come from their fields.
URL_PARAMETERS = frozenset({"sslmode", "connect_timeout", "application_name"})
# A table or column name as COPY takes it: plain or "quoted" identifiers, schema-qualified.
_NAME = r'(?:[A-Za-z_][\w$]*|"[^"]+")'
TABLE_NAME = re.compile(rf"^{_NAME}(?:\.{_NAME}){{0,2}}$")
COLUMN_NAME = re.compile(rf"^{_NAME}$")
_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([A-Za-z_]\w*)|(\S))")
POSTGRES_OPTIONS = "DELIMITER [AS] 'c', CSV [QUOTE [AS] 'c'], NULL AS 'x', JSON 'auto', GZIP"


@dataclass(frozen=True)
class Warehouse:
    """Where COPY runs: `kind` redshift or postgresql, and libpq's connection settings."""

    kind: Literal["redshift", "postgresql"]
    host: str
    port: int
    database: str
    parameters: tuple[tuple[str, str], ...] = ()


def parse_jdbc_url(url: str) -> Warehouse:
    """`jdbc:redshift://host:port/db` or `jdbc:postgresql://host[:port]/db[?sslmode=…]`."""
    if not url.startswith(("jdbc:redshift://", "jdbc:postgresql://")):
        raise ValueError(
            "must look like jdbc:redshift://<host>:<port>/<database> "
            "(or jdbc:postgresql://<host>:<port>/<database> for a PostgreSQL warehouse)"
        )
    parts = urlsplit(url.removeprefix("jdbc:"))
    kind: Literal["redshift", "postgresql"] = (
        "redshift" if parts.scheme == "redshift" else "postgresql"
    )
    try:
        port = parts.port or DEFAULT_PORTS[kind]
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    database = parts.path.removeprefix("/")
    if not parts.hostname or not database or "/" in database:
        raise ValueError("needs a host and a database: jdbc:<kind>://<host>:<port>/<database>")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials: give Username and Password instead")
    parameters = tuple(parse_qsl(parts.query))
    unknown = sorted({name for name, _ in parameters} - URL_PARAMETERS)
    if unknown:
        raise ValueError(
            f"has URL parameters {', '.join(unknown)}; only {', '.join(sorted(URL_PARAMETERS))} "
            "are passed on (credentials go in Username and Password)"
        )
    return Warehouse(kind, parts.hostname, port, database, parameters)


class CopyCommand(BaseModel):
    """`CopyCommand`: the table, its optional column list, and COPY options."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    data_table_name: str = Field(
        min_length=1, validation_alias=AliasChoices("DataTableName", "table")
    )
    data_table_columns: str | None = Field(
        None, validation_alias=AliasChoices("DataTableColumns", "columns")
    )
    copy_options: str | None = Field(
        None, max_length=204800, validation_alias=AliasChoices("CopyOptions", "options")
    )

    @field_validator("data_table_name")
    @classmethod
    def _check_table(cls, value: str) -> str:
        if not TABLE_NAME.match(value):
            raise ValueError('must be a table name: table, schema.table or "Quoted Name"')
        return value

    @field_validator("data_table_columns")
    @classmethod
    def _check_columns(cls, value: str | None) -> str | None:
        if value is not None and not all(COLUMN_NAME.match(name) for name in split_columns(value)):
            raise ValueError("must be column names separated by commas: id,name,ts")
        return value or None

    @field_validator("copy_options")
    @classmethod
    def _check_options(cls, value: str | None) -> str | None:
        if value:
            tokenize(value)  # raises on an unclosed quote
        return value or None

    @property
    def columns(self) -> list[str]:
        return split_columns(self.data_table_columns or "")

    def description(self) -> dict[str, str]:
        described = {"DataTableName": self.data_table_name}
        if self.data_table_columns:
            described["DataTableColumns"] = self.data_table_columns
        if self.copy_options:
            described["CopyOptions"] = self.copy_options
        return described


def split_columns(columns: str) -> list[str]:
    return [name.strip() for name in columns.split(",") if name.strip()]


@dataclass(frozen=True)
class Token:
    """A word (upper-cased) or a quoted string (unquoted) of CopyOptions."""

    text: str
    quoted: bool = False


def tokenize(options: str) -> list[Token]:
    """The words and quoted strings of CopyOptions; ValueError on an unclosed quote."""
    tokens: list[Token] = []
    position = 0
    while position < len(options) and not options[position:].isspace():
        match = _TOKEN.match(options, position)
        if match is None or match.group(3) == "'":
            raise ValueError("has a quote that is not closed")
        quoted, word, other = match.groups()
        if quoted is not None:
            tokens.append(Token(quoted.replace("''", "'"), quoted=True))
        else:
            tokens.append(Token((word or other).upper()))
        position = match.end()
    return tokens


def has_option(options: str | None, word: str) -> bool:
    """Whether CopyOptions holds `word` as an option word (not inside a quoted string)."""
    return any(not t.quoted and t.text == word for t in tokenize(options or ""))


@dataclass(frozen=True)
class PostgresCopy:
    """The CopyOptions PostgreSQL can express: the input format and its text settings."""

    format: Literal["text", "csv", "json"] = "text"
    delimiter: str | None = None
    null: str | None = None
    quote: str | None = None
    gzip: bool = False
    ignore_case: bool = False  # JSON 'auto ignorecase'


class _Options:
    """A cursor over CopyOptions tokens, for the small grammar PostgreSQL's subset needs."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def next_word(self) -> str | None:
        if self.at >= len(self.tokens):
            return None
        token = self.tokens[self.at]
        self.at += 1
        if token.quoted:
            raise ValueError(f"'{token.text}' is not where an option name belongs")
        return token.text

    def string(self, option: str, *, optional_as: bool = True) -> str:
        token = self.tokens[self.at] if self.at < len(self.tokens) else None
        if optional_as and token is not None and not token.quoted and token.text == "AS":
            self.at += 1
            token = self.tokens[self.at] if self.at < len(self.tokens) else None
        if token is None or not token.quoted:
            raise ValueError(f"{option} needs a quoted value, e.g. {option} AS '|'")
        self.at += 1
        return token.text


def postgres_copy(options: str | None) -> PostgresCopy:
    """The PostgreSQL reading of CopyOptions; ValueError naming what PostgreSQL cannot do."""
    cursor = _Options(tokenize(options or ""))
    found: dict[str, object] = {}
    while (word := cursor.next_word()) is not None:
        if word in found or (word in ("CSV", "JSON") and "format" in found):
            raise ValueError(f"gives {word} twice, or two formats")
        if word == "FORMAT":
            continue  # FORMAT [AS] CSV | JSON 'auto': the format word follows
        if word == "AS" and cursor.tokens[cursor.at - 2].text == "FORMAT":
            continue
        if word in ("DELIMITER", "NULL", "QUOTE"):
            found[word] = cursor.string(word)
        elif word == "CSV":
            found["format"] = found[word] = "csv"
        elif word == "JSON":
            mode = cursor.string(word, optional_as=False).strip().lower()
            if mode not in ("auto", "auto ignorecase"):
                raise ValueError(
                    f"JSON '{mode}' is not available with a PostgreSQL warehouse "
                    "(jdbc:postgresql://): only JSON 'auto' and 'auto ignorecase'"
                )
            found["format"] = found[word] = "json"
            found["ignore_case"] = mode == "auto ignorecase"
        elif word == "GZIP":
            found[word] = True
        else:
            raise ValueError(
                f"{word} is not available with a PostgreSQL warehouse (jdbc:postgresql://); "
                f"it takes {POSTGRES_OPTIONS}"
            )
    return _checked(found)


def _checked(found: dict[str, object]) -> PostgresCopy:
    form = str(found.get("format", "text"))
    if form == "json" and ({"DELIMITER", "NULL", "QUOTE"} & found.keys()):
        raise ValueError("JSON 'auto' takes no DELIMITER, NULL AS or QUOTE")
    if "QUOTE" in found and form != "csv":
        raise ValueError("QUOTE needs CSV")
    delimiter = found.get("DELIMITER")
    if delimiter is not None and len(str(delimiter).encode()) != 1:
        raise ValueError("DELIMITER must be one single-byte character for PostgreSQL")
    return PostgresCopy(
        format="csv" if form == "csv" else "json" if form == "json" else "text",
        delimiter=None if delimiter is None else str(delimiter),
        null=None if "NULL" not in found else str(found["NULL"]),
        quote=None if "QUOTE" not in found else str(found["QUOTE"]),
        gzip=bool(found.get("GZIP", False)),
        ignore_case=bool(found.get("ignore_case", False)),
    )
