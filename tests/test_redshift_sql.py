"""The statements each warehouse is sent: Firehose's COPY … MANIFEST for Redshift (checked as
text: no Redshift runs here) and COPY FROM STDIN for PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from destinations.pg_copy import copy_from_stdin_sql
from destinations.redshift_load import RedshiftLoader, StagedObject, redshift_copy_statement
from firehose.config import RedshiftConfiguration
from firehose.redshift_config import postgres_copy

ROLE = "arn:aws:iam::123456789012:role/firehose-redshift"
MANIFEST = "s3://staging/events/manifests/2026/11/22/10/events-1-2026-11-22-10-30-00-abc"
PREFIX = f"FROM '{MANIFEST}' CREDENTIALS 'aws_iam_role={ROLE}' MANIFEST"


def section(
    options: str | None = None,
    *,
    columns: str | None = None,
    compression: str = "UNCOMPRESSED",
    url: str = "jdbc:redshift://cluster.example:5439/dev",
) -> RedshiftConfiguration:
    command: dict[str, Any] = {"DataTableName": "public.events"}
    if columns:
        command["DataTableColumns"] = columns
    if options is not None:
        command["CopyOptions"] = options
    return RedshiftConfiguration.model_validate(
        {
            "RoleARN": ROLE,
            "ClusterJDBCURL": url,
            "CopyCommand": command,
            "Username": "loader",
            "Password": "secret-password",
            "S3Configuration": {
                "BucketARN": "arn:aws:s3:::staging",
                "CompressionFormat": compression,
            },
        }
    )


@pytest.mark.parametrize(
    ("options", "columns", "compression", "expected"),
    [
        (None, None, "UNCOMPRESSED", f"COPY public.events {PREFIX}"),
        ("", None, "UNCOMPRESSED", f"COPY public.events {PREFIX}"),
        (None, "id,name", "UNCOMPRESSED", f"COPY public.events (id,name) {PREFIX}"),
        ("JSON 'auto'", None, "UNCOMPRESSED", f"COPY public.events {PREFIX} JSON 'auto'"),
        ("DELIMITER '|'", None, "GZIP", f"COPY public.events {PREFIX} DELIMITER '|' GZIP"),
        (None, None, "GZIP", f"COPY public.events {PREFIX} GZIP"),
        ("gzip JSON 'auto'", None, "GZIP", f"COPY public.events {PREFIX} gzip JSON 'auto'"),
        (
            "JSON 's3://b/gzip.json' REGION 'eu-west-1'",
            "a, b",
            "GZIP",
            f"COPY public.events (a, b) {PREFIX} JSON 's3://b/gzip.json' REGION 'eu-west-1' GZIP",
        ),
        (
            "CSV IGNOREHEADER 1",
            None,
            "UNCOMPRESSED",
            f"COPY public.events {PREFIX} CSV IGNOREHEADER 1",
        ),
    ],
)
def test_redshift_copy_statement(
    options: str | None, columns: str | None, compression: str, expected: str
) -> None:
    built = section(options, columns=columns, compression=compression)
    assert redshift_copy_statement(built, MANIFEST) == expected


class RecordingExecutor:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.closed = False

    async def execute(self, statement: str) -> None:
        self.statements.append(statement)

    async def close(self) -> None:
        self.closed = True


async def test_the_redshift_loader_sends_one_statement_per_manifest() -> None:
    executor = RecordingExecutor()
    loader = RedshiftLoader(section("JSON 'auto'", compression="GZIP"), executor)
    staged = [StagedObject("staging", "events/2026/11/22/10/o.gz", b"...")]
    await loader.load(MANIFEST, staged)
    await loader.close()
    assert executor.statements == [f"COPY public.events {PREFIX} JSON 'auto' GZIP"]
    assert executor.closed
    assert "secret-password" not in loader.target


@pytest.mark.parametrize(
    ("options", "columns", "expected"),
    [
        (None, [], "COPY t FROM STDIN WITH (FORMAT text, DELIMITER '|')"),
        ("DELIMITER ','", ["a", "b"], "COPY t (a, b) FROM STDIN WITH (FORMAT text, DELIMITER ',')"),
        ("CSV", [], "COPY t FROM STDIN WITH (FORMAT csv)"),
        (
            "CSV DELIMITER ';' NULL AS 'n/a' QUOTE ''''",
            [],
            "COPY t FROM STDIN WITH (FORMAT csv, DELIMITER ';', NULL 'n/a', QUOTE '''')",
        ),
        ("NULL AS '' GZIP", [], "COPY t FROM STDIN WITH (FORMAT text, DELIMITER '|', NULL '')"),
        ("JSON 'auto'", ["a", "b"], "COPY t (a, b) FROM STDIN"),
    ],
)
def test_copy_from_stdin_statement(options: str | None, columns: list[str], expected: str) -> None:
    assert copy_from_stdin_sql("t", columns, postgres_copy(options)) == expected
