"""`DataFormatConversionConfiguration` of the extended S3 destination: what a config may say.

API names (PascalCase) and snake_case aliases, as in `firehose.config`. The schema comes from a
Glue table (as AWS reads it), or (ours) from a column list or an Avro schema file; the runtime
conversion lives in `firehose/formats/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from firehose.formats.hive_types import HiveTypeError, parse_hive_type
from firehose.formats.joda import JodaPatternError, compile_format

# The extension each serializer gives objects when FileExtension is not set.
EXTENSIONS = {"parquet": ".parquet", "orc": ".orc", "avro": ".avro"}


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def description(self) -> dict[str, Any]:
        """The section as DescribeDeliveryStream shows it: API names, unset members left out."""
        shown: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            alias = info.validation_alias
            key = alias.choices[0] if isinstance(alias, AliasChoices) else name
            if isinstance(value, _Model):
                value = value.description()
            elif isinstance(value, list):
                value = [item.description() if isinstance(item, _Model) else item for item in value]
            shown[str(key)] = value
        return shown


class Column(_Model):
    """One column of a schema given in the config (ours): a name and a Glue/Hive type."""

    name: str = Field(validation_alias=_alias("Name", "name"))
    type: str = Field(validation_alias=_alias("Type", "type"))

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("must not be empty")
        return value.lower()  # Hive column names are case-insensitive, stored lower-case

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        try:
            parse_hive_type(value)
        except HiveTypeError as exc:
            raise ValueError(str(exc)) from None
        return value


class SchemaConfiguration(_Model):
    """Where the table schema comes from: a Glue table, or (ours) `Columns` or `AvroSchemaFile`."""

    catalog_id: str | None = Field(None, validation_alias=_alias("CatalogId", "catalog_id"))
    database_name: str | None = Field(
        None, validation_alias=_alias("DatabaseName", "database_name")
    )
    table_name: str | None = Field(None, validation_alias=_alias("TableName", "table_name"))
    region: str | None = Field(None, validation_alias=_alias("Region", "region"))
    version_id: str = Field("LATEST", validation_alias=_alias("VersionId", "version_id"))
    role_arn: str | None = Field(None, validation_alias=_alias("RoleARN", "role_arn"))
    columns: list[Column] | None = Field(None, validation_alias=_alias("Columns", "columns"))
    avro_schema_file: str | None = Field(
        None, validation_alias=_alias("AvroSchemaFile", "avro_schema_file")
    )

    @model_validator(mode="after")
    def _one_source(self) -> SchemaConfiguration:
        glue = self.database_name is not None or self.table_name is not None
        given = [glue, self.columns is not None, self.avro_schema_file is not None]
        if sum(given) != 1:
            raise ValueError(
                "give the schema one way: DatabaseName and TableName (a Glue table), "
                "Columns, or AvroSchemaFile"
            )
        if glue and not (self.database_name and self.table_name):
            raise ValueError("a Glue table needs both DatabaseName and TableName")
        if self.columns is not None:
            if not self.columns:
                raise ValueError("Columns must name at least one column")
            names = [column.name for column in self.columns]
            if len(set(names)) != len(names):
                raise ValueError("Columns: a column name appears twice (case-insensitively)")
        if self.avro_schema_file is not None:
            from firehose.formats.schema import SchemaError, avro_file_columns

            try:
                avro_file_columns(Path(self.avro_schema_file))
            except SchemaError as exc:
                raise ValueError(f"AvroSchemaFile: {exc}") from None
        return self

    @property
    def from_glue(self) -> bool:
        return self.table_name is not None


class OpenXJsonSerDe(_Model):
    convert_dots_in_json_keys_to_underscores: bool = Field(
        False,
        validation_alias=_alias(
            "ConvertDotsInJsonKeysToUnderscores", "convert_dots_in_json_keys_to_underscores"
        ),
    )
    case_insensitive: bool = Field(
        True, validation_alias=_alias("CaseInsensitive", "case_insensitive")
    )
    column_to_json_key_mappings: dict[str, str] | None = Field(
        None, validation_alias=_alias("ColumnToJsonKeyMappings", "column_to_json_key_mappings")
    )


class HiveJsonSerDe(_Model):
    timestamp_formats: list[str] | None = Field(
        None, validation_alias=_alias("TimestampFormats", "timestamp_formats")
    )

    @field_validator("timestamp_formats")
    @classmethod
    def _check_formats(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            try:
                compile_format(pattern)
            except JodaPatternError as exc:
                raise ValueError(str(exc)) from None
        return value


class Deserializer(_Model):
    open_x_json_ser_de: OpenXJsonSerDe | None = Field(
        None, validation_alias=_alias("OpenXJsonSerDe", "openx_json")
    )
    hive_json_ser_de: HiveJsonSerDe | None = Field(
        None, validation_alias=_alias("HiveJsonSerDe", "hive_json")
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Deserializer:
        if (self.open_x_json_ser_de is None) == (self.hive_json_ser_de is None):
            raise ValueError("give exactly one of OpenXJsonSerDe and HiveJsonSerDe")
        return self


class InputFormatConfiguration(_Model):
    deserializer: Deserializer = Field(validation_alias=_alias("Deserializer", "deserializer"))


class ParquetSerDe(_Model):
    block_size_bytes: int = Field(
        256 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        validation_alias=_alias("BlockSizeBytes", "block_size_bytes"),
    )
    page_size_bytes: int = Field(
        1024 * 1024, ge=64 * 1024, validation_alias=_alias("PageSizeBytes", "page_size_bytes")
    )
    compression: Literal["SNAPPY", "GZIP", "UNCOMPRESSED", "ZSTD"] = Field(
        "SNAPPY", validation_alias=_alias("Compression", "compression")
    )
    enable_dictionary_compression: bool = Field(
        False,
        validation_alias=_alias("EnableDictionaryCompression", "enable_dictionary_compression"),
    )
    max_padding_bytes: int = Field(
        0, ge=0, validation_alias=_alias("MaxPaddingBytes", "max_padding_bytes")
    )
    writer_version_format: Literal["V1", "V2"] = Field(
        "V1", validation_alias=_alias("WriterVersionFormat", "writer_version_format")
    )


class OrcSerDe(_Model):
    stripe_size_bytes: int = Field(
        64 * 1024 * 1024,
        ge=8 * 1024 * 1024,
        validation_alias=_alias("StripeSizeBytes", "stripe_size_bytes"),
    )
    block_size_bytes: int = Field(
        256 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        validation_alias=_alias("BlockSizeBytes", "block_size_bytes"),
    )
    row_index_stride: int = Field(
        10000, ge=1000, validation_alias=_alias("RowIndexStride", "row_index_stride")
    )
    enable_padding: bool = Field(False, validation_alias=_alias("EnablePadding", "enable_padding"))
    padding_tolerance: float = Field(
        0.05, ge=0, le=1, validation_alias=_alias("PaddingTolerance", "padding_tolerance")
    )
    compression: Literal["NONE", "ZLIB", "SNAPPY", "ZSTD"] = Field(
        "SNAPPY", validation_alias=_alias("Compression", "compression")
    )
    bloom_filter_columns: list[str] | None = Field(
        None, validation_alias=_alias("BloomFilterColumns", "bloom_filter_columns")
    )
    bloom_filter_false_positive_probability: float = Field(
        0.05,
        gt=0,
        lt=1,
        validation_alias=_alias(
            "BloomFilterFalsePositiveProbability", "bloom_filter_false_positive_probability"
        ),
    )
    dictionary_key_threshold: float = Field(
        0.8,
        ge=0,
        le=1,
        validation_alias=_alias("DictionaryKeyThreshold", "dictionary_key_threshold"),
    )
    format_version: Literal["V0_11", "V0_12"] = Field(
        "V0_12", validation_alias=_alias("FormatVersion", "format_version")
    )


class AvroSerDe(_Model):
    """Ours: Avro object container files, written with fastavro."""

    compression: Literal["null", "deflate", "snappy", "zstandard"] = Field(
        "snappy", validation_alias=_alias("Compression", "compression")
    )


class Serializer(_Model):
    parquet_ser_de: ParquetSerDe | None = Field(
        None, validation_alias=_alias("ParquetSerDe", "parquet")
    )
    orc_ser_de: OrcSerDe | None = Field(None, validation_alias=_alias("OrcSerDe", "orc"))
    avro_ser_de: AvroSerDe | None = Field(None, validation_alias=_alias("AvroSerDe", "avro"))

    @model_validator(mode="after")
    def _exactly_one(self) -> Serializer:
        given = [self.parquet_ser_de, self.orc_ser_de, self.avro_ser_de]
        if sum(item is not None for item in given) != 1:
            raise ValueError("give exactly one of ParquetSerDe, OrcSerDe and AvroSerDe")
        return self

    @property
    def format(self) -> str:
        """`parquet`, `orc` or `avro`."""
        if self.parquet_ser_de is not None:
            return "parquet"
        return "orc" if self.orc_ser_de is not None else "avro"


class OutputFormatConfiguration(_Model):
    serializer: Serializer = Field(validation_alias=_alias("Serializer", "serializer"))


class DataFormatConversionConfiguration(_Model):
    """Turned on unless `Enabled: false`; then the three sections are required."""

    enabled: bool = Field(True, validation_alias=_alias("Enabled", "enabled"))
    schema_configuration: SchemaConfiguration | None = Field(
        None, validation_alias=_alias("SchemaConfiguration", "schema")
    )
    input_format_configuration: InputFormatConfiguration | None = Field(
        None, validation_alias=_alias("InputFormatConfiguration", "input")
    )
    output_format_configuration: OutputFormatConfiguration | None = Field(
        None, validation_alias=_alias("OutputFormatConfiguration", "output")
    )

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> DataFormatConversionConfiguration:
        if not self.enabled:
            return self
        missing = [
            api
            for api, value in (
                ("SchemaConfiguration", self.schema_configuration),
                ("InputFormatConfiguration", self.input_format_configuration),
                ("OutputFormatConfiguration", self.output_format_configuration),
            )
            if value is None
        ]
        if missing:
            raise ValueError(f"{', '.join(missing)} required when Enabled is true")
        hive = self.deserializer.hive_json_ser_de is not None
        columns = self.schema_source.columns or []
        if hive and any("." in column.name for column in columns):
            raise ValueError("HiveJsonSerDe does not allow dots in column names")
        return self

    @property
    def schema_source(self) -> SchemaConfiguration:
        assert self.schema_configuration is not None
        return self.schema_configuration

    @property
    def deserializer(self) -> Deserializer:
        assert self.input_format_configuration is not None
        return self.input_format_configuration.deserializer

    @property
    def serializer(self) -> Serializer:
        assert self.output_format_configuration is not None
        return self.output_format_configuration.serializer

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.serializer.format]
