"""Runs `firehose serve` as a real process, as a user would, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

from firehose.testing.servers import free_port


@dataclass
class ServiceProcess:
    """One `firehose serve` process with its own config folder, data dir and port."""

    workdir: Path
    streams: list[dict[str, Any]]
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    # The certificate to trust when the service serves HTTPS (its --tls-cert, self-signed).
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ca_file is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "service.log"

    def start(self, *, wait: bool = True) -> ServiceProcess:
        configs = self.workdir / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        for stream in self.streams:
            (configs / f"{stream['DeliveryStreamName']}.yaml").write_text(yaml.safe_dump(stream))
        env = {**os.environ, **self.env}
        command = [
            sys.executable, "-m", "firehose.cli", "serve",
            "--config", str(configs),
            "--data-dir", str(self.workdir / "data"),
            "--port", str(self.port),
            *self.args,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/health", timeout=1, context=self.tls_context()
                ) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not healthy in {timeout}s:\n{self.log()}")

    def tls_context(self) -> ssl.SSLContext | None:
        """A client context trusting `ca_file`; None for plain HTTP."""
        return None if self.ca_file is None else ssl.create_default_context(cafile=self.ca_file)

    def health_text(self) -> str:
        """The body of /health: the streams' counters and states, as JSON."""
        with urllib.request.urlopen(
            f"{self.url}/health", timeout=5, context=self.tls_context()
        ) as answer:
            text: str = answer.read().decode()
        return text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def client(self, key_id: str = "test", secret: str = "test") -> Any:
        return firehose_client(self.url, key_id, secret, verify=self.ca_file)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as an orchestrator stops it; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def firehose_client(
    endpoint_url: str, key_id: str = "test", secret: str = "test", verify: Path | None = None
) -> Any:
    """A boto3 firehose client as a producer would make it; no retries, so tests see answers.
    `verify`: the certificate to trust for HTTPS."""
    return boto3.client(
        "firehose",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        verify=str(verify) if verify is not None else None,
        config=Config(retries={"max_attempts": 1}, read_timeout=30),
    )


def s3_stream(name: str, bucket: str, **destination: Any) -> dict[str, Any]:
    """A CreateDeliveryStream body for an extended S3 destination."""
    config = {"BucketARN": f"arn:aws:s3:::{bucket}", **destination}
    config.setdefault("BufferingHints", {"SizeInMBs": 1, "IntervalInSeconds": 1})
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": config,
    }
