"""Kinesis servers for tests and benchmarks: kinesalite (npm) and moto, on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import boto3

from firehose.testing.servers import HOST, START_DEADLINE_S, _spawn, free_port, stop

KINESALITE_VERSION = "3.3.3"
# Installed once per checkout by `make kinesalite` (CI runs it); tests fall back to installing.
KINESALITE_DIR = Path(__file__).resolve().parents[2] / ".kinesalite"


def install_kinesalite(folder: Path = KINESALITE_DIR) -> Path:
    """`npm install kinesalite` into `folder` (once); the path of its command."""
    command = folder / "node_modules" / ".bin" / "kinesalite"
    if command.exists():
        return command
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed: kinesalite cannot be")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder),
         f"kinesalite@{KINESALITE_VERSION}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return command


def kinesis_client(endpoint_url: str) -> object:
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="firehose-test",
        aws_secret_access_key="firehose-test-secret",
    )


def start_kinesalite(workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """kinesalite in memory, streams active at once; its endpoint URL once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        str(install_kinesalite()), "--port", str(port), "--host", HOST,
        "--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0",
        "--shardLimit", "1000",
    ]  # fmt: skip
    log_path = workdir / "kinesalite.log"
    proc = _spawn(args, log_path, dict(os.environ))
    url = f"http://{HOST}:{port}"
    client = kinesis_client(url)
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            client.list_streams()  # type: ignore[attr-defined]
            return url, proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"kinesalite did not start; log {log_path}") from None
            time.sleep(0.2)
