"""The columns a stream's SchemaConfiguration names, wherever they are kept."""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from firehose.format_config import SchemaConfiguration
from firehose.formats.glue import glue_columns
from firehose.formats.schema import Columns, SchemaError, avro_file_columns, parse_columns


class SchemaUnavailable(Exception):
    """The schema cannot be read now; `code` is the error code the attempt fails with."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def load_columns(schema: SchemaConfiguration, default_region: str) -> Columns:
    """Columns from the config, an Avro schema file, or the Glue table (read each call)."""
    try:
        if schema.columns is not None:
            return parse_columns([(column.name, column.type) for column in schema.columns])
        if schema.avro_schema_file is not None:
            return avro_file_columns(Path(schema.avro_schema_file))
        assert schema.database_name is not None and schema.table_name is not None
        return await glue_columns(
            schema.database_name,
            schema.table_name,
            region=schema.region or default_region,
            catalog_id=schema.catalog_id,
            version_id=schema.version_id,
        )
    except SchemaError as exc:
        raise SchemaUnavailable(str(exc), "DataFormatConversion.InvalidSchema") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "ServiceException").removesuffix("Exception")
        message = f"Glue: {error.get('Message') or exc}"
        raise SchemaUnavailable(message, f"DataFormatConversion.{code}") from exc
    except (BotoCoreError, OSError) as exc:
        raise SchemaUnavailable(f"Glue: {exc}", "DataFormatConversion.GlueUnreachable") from exc
