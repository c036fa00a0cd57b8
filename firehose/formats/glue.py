"""A Glue table's columns, read as Firehose reads them: `GetTable` (or `GetTableVersion` for a
VersionId other than LATEST) on any Glue-compatible endpoint.

The endpoint is AWS_ENDPOINT_URL_GLUE, else AWS_ENDPOINT_URL, else AWS's; credentials come
from the standard chain.
"""

from __future__ import annotations

import os
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from firehose.formats.schema import Columns, SchemaError, parse_columns


def glue_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get("AWS_ENDPOINT_URL") or None


async def glue_columns(
    database: str,
    table: str,
    *,
    region: str,
    catalog_id: str | None = None,
    version_id: str = "LATEST",
) -> Columns:
    """The table's columns: its StorageDescriptor's (partition keys name folders, not columns
    of the files)."""
    config = AioConfig(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)
    ids: dict[str, Any] = {"DatabaseName": database}
    if catalog_id:
        ids["CatalogId"] = catalog_id
    async with get_session().create_client(
        "glue", region_name=region, endpoint_url=glue_endpoint(), config=config
    ) as client:
        if version_id == "LATEST":
            answer = await client.get_table(Name=table, **ids)
            found = answer["Table"]
        else:
            answer = await client.get_table_version(TableName=table, VersionId=version_id, **ids)
            found = answer["TableVersion"]["Table"]
    described = found.get("StorageDescriptor", {}).get("Columns", [])
    try:
        return parse_columns([(column["Name"], column["Type"]) for column in described])
    except SchemaError as exc:
        raise SchemaError(f"Glue table {database}.{table}: {exc}") from None
