"""`firehose validate`, run for real as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from firehose.settings import Settings

REPO = Path(__file__).resolve().parent.parent
# The shipped example, by name: a user's own streams in configs/ must not change what tests see.
EXAMPLE = REPO / "configs" / "local-events.yaml"


def run(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m firehose.cli ARGS` with no FIREHOSE_* variable but those in `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("FIREHOSE_")}
    return subprocess.run(
        [sys.executable, "-m", "firehose.cli", *args],
        cwd=cwd,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory whose configs/ holds only the shipped example, as a fresh checkout."""
    folder = tmp_path / "work"
    (folder / "configs").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "configs" / EXAMPLE.name)
    return folder


def test_repository_configs_validate() -> None:
    result = run("validate", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["local-events: ok"]
    assert result.stderr == ""


def test_default_config_folder_is_configs_in_the_working_directory(workdir: Path) -> None:
    result = run("validate", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "local-events: ok" in result.stdout


def test_bad_config_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        """\
        DeliveryStreamName: clicks
        ExtendedS3DestinationConfiguration:
          BucketARN: arn:aws:s3:::b
          BufferingHints: {SizeInMBs: 500, IntervalInSeconds: 60}
          CompressionFormat: LZ4
          Prefx: logs/
        """,
    )
    result = run("validate", "--config", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}: ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs: "
        "got 500, must be less than or equal to 128",
        f"{bad}: ExtendedS3DestinationConfiguration.CompressionFormat: "
        "got 'LZ4', must be one of UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY, ZSTD",
        f"{bad}: ExtendedS3DestinationConfiguration.Prefx: is not a known field "
        "(did you mean Prefix?)",
    ]


def test_problems_of_several_files_and_invalid_yaml_all_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: a\ns3: {bucket: b, buffering: {size_mib: 0}}\n")
    write(tmp_path, "b.yaml", "name: b\ns3: {bucket: b\n")
    write(tmp_path, "c.yaml", "name: c\ns3: {bucket: b}\n")
    result = run("validate", "--config", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'a.yaml'}: s3.buffering.interval_seconds: ")
    assert lines[1].startswith(f"{tmp_path / 'b.yaml'}: is not valid YAML: line ")


def test_missing_config_path(tmp_path: Path) -> None:
    result = run("validate", "--config", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{tmp_path / 'nope'}: does not exist"


def test_config_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "streams.yaml", "name: from-env\ns3: {bucket: b}\n")
    result = run("validate", env={"FIREHOSE_CONFIG": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["from-env: ok"]


def test_config_option_wins_over_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "streams.yaml", "name: from-env\ns3: {bucket: b}\n")
    result = run("validate", "--config", str(EXAMPLE), env={"FIREHOSE_CONFIG": str(tmp_path)})
    assert result.stdout.splitlines() == ["local-events: ok"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FIREHOSE_PORT", "abc", "FIREHOSE_PORT: got 'abc', must be a whole number"),
        (
            "FIREHOSE_PORT",
            "70000",
            "FIREHOSE_PORT: got '70000', must be less than or equal to 65535",
        ),
        ("FIREHOSE_ACCOUNT_ID", "12", "FIREHOSE_ACCOUNT_ID: got '12', must be 12 digits"),
        (
            "FIREHOSE_LOG_LEVEL",
            "loud",
            "FIREHOSE_LOG_LEVEL: got 'loud', must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
    ],
)
def test_bad_setting_is_a_clear_message(
    variable: str, value: str, message: str, workdir: Path
) -> None:
    result = run("validate", cwd=workdir, env={variable: value})
    assert result.returncode != 0
    assert result.stderr.splitlines() == [message]
    assert "Traceback" not in result.stderr


def test_log_level_in_any_case(workdir: Path) -> None:
    result = run("validate", cwd=workdir, env={"FIREHOSE_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "firehose"
    if not script.exists():
        pytest.skip("the firehose console script is not installed next to this interpreter")
    write(tmp_path, "s.yaml", "name: s\ns3: {bucket: b, compression: nope}\n")
    result = subprocess.run(
        [str(script), "validate", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 's.yaml'}: s3.compression: got 'nope', "
        "must be one of uncompressed, gzip, zip, snappy, hadoop_snappy, zstd"
    ]


def test_bad_command_line_option_is_named_as_an_option() -> None:
    result = run("serve", "--port", "70000", "--config", str(EXAMPLE))
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["--port: got 70000, must be less than or equal to 65535"]


def test_bad_endpoint_setting(workdir: Path) -> None:
    result = run("validate", cwd=workdir, env={"FIREHOSE_S3_ENDPOINT_URL": "localhost:9000"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "FIREHOSE_S3_ENDPOINT_URL: got 'localhost:9000', "
        "must start with http://, https:// or file://"
    ]


def test_serve_refuses_a_bad_config_with_the_same_problems(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "DeliveryStreamName: s\n"
        "ExtendedS3DestinationConfiguration:\n"
        "  BucketARN: arn:aws:s3:::b\n"
        "  BufferingHints: {SizeInMBs: 500, IntervalInSeconds: 60}\n"
    )
    result = run("serve", "--config", str(tmp_path), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 's.yaml'}: ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs: "
        "got 500, must be less than or equal to 128"
    ]


def shown_default(default: Any) -> str:
    """A default as help and README show it: 25, not 25.0."""
    if default is None:
        return "unset"
    return f"{default:g}" if isinstance(default, float) else str(default)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"firehose {version('firehose')}"


def test_serve_help_names_every_setting_with_its_variable_and_default() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines anywhere
    for name, field in Settings.model_fields.items():
        option = f"--{name.replace('_', '-')}"
        assert option in text
        assert f"env FIREHOSE_{name.upper()}" in text.replace("- ", "-")
        shown = shown_default(field.default)
        assert f"default {shown})" in text.replace("- ", "-"), name


def test_every_setting_is_an_option(tmp_path: Path) -> None:
    result = run("serve", "--config", str(tmp_path / "nope"), "--header-timeout-seconds", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--header-timeout-seconds: got 0.0, must be greater than 0"
    ]


def test_readme_lists_every_setting_with_its_default() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Service settings", 1)[1].split("\n## ", 1)[0]
    for name, field in Settings.model_fields.items():
        assert f"`FIREHOSE_{name.upper()}`" in table, name
        shown = shown_default(field.default)
        row = next(line for line in table.splitlines() if f"`FIREHOSE_{name.upper()}`" in line)
        assert f"| `{shown}` |" in row or f"| {shown} |" in row, (name, row)
