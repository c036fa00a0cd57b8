"""The docker-compose stack names only what the repository has: files, configs, ports,
variables and modules. No Docker engine runs here, so the file is also checked by a real
compose parser (`docker-compose config`) when one is installed (CI installs it)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from firehose.config_load import load_configs
from firehose.service import CONFIG_CHECKS
from firehose.settings import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_a_real_compose_parser_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("no docker-compose here; CI installs it and runs this")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_built_services_use_this_repositorys_dockerfile() -> None:
    built = [s for s in compose()["services"].values() if "build" in s]
    assert built and all(service["build"] == "." for service in built)
    dockerfile = (REPO / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for name in source.split():
            assert (REPO / name).exists(), name


def test_mounted_configs_exist_and_load() -> None:
    firehose = compose()["services"]["firehose"]
    mounts = [volume.split(":") for volume in firehose["volumes"] if volume.startswith("./")]
    [(host, container, _mode)] = mounts
    assert (REPO / host).is_dir()
    assert firehose["environment"]["FIREHOSE_CONFIG"] == container
    streams = load_configs(REPO / host, CONFIG_CHECKS)
    assert [stream.name for stream in streams] == ["clickstream"]
    assert str(streams[0].type) == "KinesisStreamAsSource"


def test_ports_variables_and_modules_are_the_services_own() -> None:
    services = compose()["services"]
    default_port = Settings.model_fields["port"].default
    assert f"{default_port}:{default_port}" in services["firehose"]["ports"]
    for service in services.values():
        for name in service.get("environment", {}):
            if name.startswith(ENV_PREFIX):
                assert name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, name
    command = services["producer"]["command"]
    module = command[command.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    grace = services["firehose"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > Settings.model_fields["shutdown_timeout_seconds"].default
