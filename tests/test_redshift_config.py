"""RedshiftDestinationConfiguration: both forms, defaults, the intermediate bucket's rules, the
CopyOptions a PostgreSQL warehouse can honour, and a password that is never shown."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations import (
    DestinationContext,
    build_destination,
    build_error_output,
    build_source_backup,
)
from firehose.config import DeliveryStreamConfig, RedshiftConfiguration
from firehose.config_load import ConfigError, load_configs
from firehose.describe import describe
from firehose.redshift_config import PostgresCopy, parse_jdbc_url, postgres_copy
from firehose.settings import Settings

PASSWORD = "Sup3r-secret-pw"
ROLE = "arn:aws:iam::123456789012:role/firehose-redshift"
REDSHIFT_URL = "jdbc:redshift://cluster.abc.us-east-1.redshift.amazonaws.com:5439/dev"

SNAKE_FORM = f"""
name: events
redshift:
  jdbc_url: jdbc:postgresql://127.0.0.1:5432/warehouse
  copy_command: {{table: events, columns: "id,name", options: "CSV GZIP"}}
  username: loader
  password: {PASSWORD}
  retry: {{duration_seconds: 60}}
  s3_configuration: {{bucket: staging, prefix: events/, compression: gzip}}
  backup_mode: Enabled
  backup: {{bucket: raw-events}}
"""


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "events",
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": REDSHIFT_URL,
            "CopyCommand": {"DataTableName": "events"},
            "Username": "loader",
            "Password": PASSWORD,
            "S3Configuration": {"BucketARN": "arn:aws:s3:::staging", "Prefix": "events/"},
            **extra,
        },
    }


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "events.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str) -> DeliveryStreamConfig:
    [config] = load_configs(write(tmp_path, text))
    return config


def problems(tmp_path: Path, document: dict[str, Any] | str) -> str:
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    with pytest.raises(ConfigError) as caught:
        load_configs(write(tmp_path, text))
    return str(caught.value)


def section_of(config: DeliveryStreamConfig) -> RedshiftConfiguration:
    assert isinstance(config.destination, RedshiftConfiguration)
    return config.destination


def test_defaults_and_buffering_from_the_intermediate_bucket(tmp_path: Path) -> None:
    section = section_of(load(tmp_path, yaml.safe_dump(minimal())))
    assert section.retry_options.duration_in_seconds == 3600
    assert section.s3_backup_mode == "Disabled"
    assert section.buffering_hints == section.s3_configuration.buffering_hints
    assert section.buffering_hints.size_in_mbs == 5
    assert section.retry_policy().deadline_seconds is None  # the destination keeps the window
    assert section.backup_location() is None
    assert section.error_location() is section.s3_configuration
    assert not section.backs_up_processed


def test_snake_case_form(tmp_path: Path) -> None:
    section = section_of(load(tmp_path, SNAKE_FORM))
    assert section.warehouse.kind == "postgresql"
    assert section.copy_command.columns == ["id", "name"]
    assert section.staged_gzip and section.copy_says_gzip
    assert section.retry_options.duration_in_seconds == 60
    backup = section.backup_location()
    assert backup is not None and backup.bucket == "raw-events"


@pytest.mark.parametrize(
    ("member", "value", "expected"),
    [
        ("Prefix", "y=!{timestamp:yyyy}/", "must not hold !{...} expressions"),
        ("ErrorOutputPrefix", "errors/", "is not used in Redshift's intermediate bucket"),
        ("CompressionFormat", "Snappy", "must be UNCOMPRESSED or GZIP"),
        ("CompressionFormat", "ZIP", "must be UNCOMPRESSED or GZIP"),
    ],
)
def test_intermediate_bucket_rules(tmp_path: Path, member: str, value: str, expected: str) -> None:
    staging = {"BucketARN": "arn:aws:s3:::staging", member: value}
    text = problems(tmp_path, minimal(S3Configuration=staging))
    assert f"S3Configuration.{member}" in text and expected in text, text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jdbc:mysql://h:3306/db", "must look like jdbc:redshift://"),
        ("jdbc:redshift://h:5439/", "needs a host and a database"),
        ("jdbc:redshift://u:p@h:5439/db", "must not hold credentials"),
        ("jdbc:postgresql://h/db?password=x", "only application_name"),
    ],
)
def test_jdbc_url_problems(tmp_path: Path, url: str, expected: str) -> None:
    text = problems(tmp_path, minimal(ClusterJDBCURL=url))
    assert "ClusterJDBCURL" in text and expected in text, text


def test_jdbc_url_defaults() -> None:
    assert parse_jdbc_url("jdbc:redshift://h/db").port == 5439
    warehouse = parse_jdbc_url("jdbc:postgresql://db.example:6543/w?sslmode=require")
    assert (warehouse.port, warehouse.database, warehouse.parameters) == (
        6543,
        "w",
        (("sslmode", "require"),),
    )


def test_redshift_needs_a_role(tmp_path: Path) -> None:
    body = minimal()
    del body["RedshiftDestinationConfiguration"]["RoleARN"]
    assert "RoleARN: is required" in problems(tmp_path, body)


def test_range_and_required_members(tmp_path: Path) -> None:
    text = problems(tmp_path, minimal(RetryOptions={"DurationInSeconds": 7201}))
    assert "RetryOptions.DurationInSeconds" in text
    body = minimal()
    del body["RedshiftDestinationConfiguration"]["CopyCommand"]
    assert "CopyCommand: is required" in problems(tmp_path, body)
    text = problems(tmp_path, minimal(CopyCommand={"DataTableName": "drop table x;"}))
    assert "DataTableName" in text


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, PostgresCopy()),
        ("DELIMITER '|'", PostgresCopy(delimiter="|")),
        ("DELIMITER AS ','", PostgresCopy(delimiter=",")),
        ("csv", PostgresCopy(format="csv")),
        ("CSV QUOTE AS '\"' NULL AS 'none'", PostgresCopy(format="csv", quote='"', null="none")),
        ("NULL AS '\\N' DELIMITER '\t'", PostgresCopy(delimiter="\t", null="\\N")),
        ("JSON 'auto'", PostgresCopy(format="json")),
        ("FORMAT AS JSON 'auto ignorecase'", PostgresCopy(format="json", ignore_case=True)),
        ("json 'auto' gzip", PostgresCopy(format="json", gzip=True)),
        ("GZIP DELIMITER ''''", PostgresCopy(delimiter="'", gzip=True)),
    ],
)
def test_copy_options_postgresql_understands(options: str | None, expected: PostgresCopy) -> None:
    assert postgres_copy(options) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("REGION 'us-east-1'", "REGION is not available with a PostgreSQL warehouse"),
        ("TIMEFORMAT 'auto'", "TIMEFORMAT is not available"),
        ("JSON 's3://bucket/jsonpaths.json'", "only JSON 'auto'"),
        ("DELIMITER", "DELIMITER needs a quoted value"),
        ("DELIMITER '||'", "one single-byte character"),
        ("CSV JSON 'auto'", "two formats"),
        ("JSON 'auto' DELIMITER ','", "takes no DELIMITER"),
        ("QUOTE '\"'", "QUOTE needs CSV"),
        ("DELIMITER '|", "quote that is not closed"),
    ],
)
def test_copy_options_refused_for_postgresql(tmp_path: Path, options: str, expected: str) -> None:
    body = minimal(
        ClusterJDBCURL="jdbc:postgresql://127.0.0.1:5432/warehouse",
        CopyCommand={"DataTableName": "events", "CopyOptions": options},
    )
    text = problems(tmp_path, body)
    assert "CopyCommand" in text and expected in text, text


def test_gzip_option_needs_gzipped_staging_for_postgresql(tmp_path: Path) -> None:
    body = minimal(
        ClusterJDBCURL="jdbc:postgresql://127.0.0.1/warehouse",
        CopyCommand={"DataTableName": "events", "CopyOptions": "GZIP"},
    )
    assert "GZIP needs S3Configuration CompressionFormat GZIP" in problems(tmp_path, body)


def test_redshift_takes_any_copy_options(tmp_path: Path) -> None:
    options = "JSON 's3://b/paths.json' REGION 'eu-west-1' TIMEFORMAT 'auto'"
    body = minimal(CopyCommand={"DataTableName": "events", "CopyOptions": options})
    section = section_of(load(tmp_path, yaml.safe_dump(body)))
    assert section.copy_command.copy_options == options


def test_a_password_is_never_echoed_in_problems(tmp_path: Path) -> None:
    text = problems(tmp_path, minimal(Password="p" * 600))
    assert "RedshiftDestinationConfiguration.Password" in text
    assert "ppppp" not in text
    text = problems(tmp_path, SNAKE_FORM.replace(PASSWORD, "[" + PASSWORD + "]"))
    assert PASSWORD not in text


def test_description_hides_the_password(tmp_path: Path) -> None:
    config = load(tmp_path, SNAKE_FORM)
    description = describe(config, region="us-east-1", account_id="123456789012", created_at=0)
    [destination] = description["Destinations"]
    redshift = destination["RedshiftDestinationDescription"]
    assert redshift["ClusterJDBCURL"] == "jdbc:postgresql://127.0.0.1:5432/warehouse"
    assert redshift["CopyCommand"] == {
        "DataTableName": "events",
        "DataTableColumns": "id,name",
        "CopyOptions": "CSV GZIP",
    }
    assert redshift["Username"] == "loader"
    assert redshift["RetryOptions"] == {"DurationInSeconds": 60}
    assert redshift["S3BackupMode"] == "Enabled"
    assert redshift["S3BackupDescription"]["BucketARN"] == "arn:aws:s3:::raw-events"
    assert redshift["S3DestinationDescription"]["CompressionFormat"] == "GZIP"
    assert "Password" not in redshift
    assert PASSWORD not in repr(description)
    assert PASSWORD not in repr(config)


def test_the_registry_builds_it_with_a_source_backup(tmp_path: Path) -> None:
    config = load(tmp_path, SNAKE_FORM)
    context = DestinationContext(Settings())
    destination = build_destination(config, context)
    assert destination.kind == "Redshift"
    assert PASSWORD not in destination.target
    backup = build_source_backup(config, context)
    assert backup is not None and not backup.processed  # the records as they came
    assert build_error_output(config, context) is not None
