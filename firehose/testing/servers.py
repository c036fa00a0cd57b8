"""Real S3-compatible servers (SeaweedFS, moto) on 127.0.0.1 for tests and benchmarks.

Each server runs as a subprocess on ports picked free at start, so parallel sessions and
other engineers' servers never collide. Plain helpers: tests/conftest.py turns them into fixtures.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

HOST = "127.0.0.1"
REGION = "us-east-1"
START_DEADLINE_S = 60.0
# SeaweedFS derives a gRPC port as HTTP port + 10000 in places that ignore -*.port.grpc.
GRPC_PORT_OFFSET = 10000
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
UNIX_PATH_MAX = 108  # sun_path size on Linux


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port_with_grpc_twin() -> int:
    """A free port P whose P + 10000 is free too, for listeners SeaweedFS offsets blindly."""
    for _ in range(100):
        port = free_port()
        twin = port + GRPC_PORT_OFFSET
        if twin <= 65535 and _port_is_free(twin):
            return port
    raise RuntimeError("no free port P with P + 10000 also free on 127.0.0.1")


def find_binary(name: str) -> str:
    """Path to `name`, preferring the running venv's bin dir over PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: not in {candidate.parent} nor on PATH")
    return found


@dataclass(frozen=True)
class S3Server:
    """Where a running S3-compatible server answers and with which credentials."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = REGION

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client; path style because 127.0.0.1 has no bucket subdomains."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under `prefix`, across all ListObjectsV2 pages."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def env(self) -> dict[str, str]:
        """AWS_* variables that point a subprocess's AWS SDK at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_serving(server: S3Server, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Block until a real S3 call succeeds: an open port alone does not mean S3 is ready."""
    client = server.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    deadline = time.monotonic() + START_DEADLINE_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {proc.returncode} before serving S3; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )
        try:
            client.list_buckets()
            return
        except Exception as error:  # any failure means "not ready yet" until the deadline
            last_error = error
            time.sleep(0.2)
    stop(proc)
    raise TimeoutError(
        f"{server.name} at {server.endpoint_url} not serving S3 after {START_DEADLINE_S:.0f} s "
        f"(last error: {last_error!r}); log {log_path}:\n{_log_tail(log_path)}"
    )


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it if pytest dies, so no server outlives a run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    preexec = _die_with_parent if sys.platform == "linux" else None
    with log_path.open("wb") as log:
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec
        )


def _local_socket_flags(workdir: Path) -> list[str]:
    """Unix sockets in workdir: by default weed leaves /tmp/seaweedfs-s3-<port>.sock behind."""
    sockets = {"filer": workdir / "filer.sock", "s3": workdir / "s3.sock"}
    if any(len(str(path)) >= UNIX_PATH_MAX for path in sockets.values()):
        return []  # too long for sun_path; weed's per-port /tmp default is still collision-free
    return [f"-{name}.localSocket={path}" for name, path in sockets.items()]


def start_seaweedfs(workdir: Path) -> tuple[S3Server, subprocess.Popen[bytes]]:
    """Start `weed mini` in `workdir` with every listener on a fresh port; S3 answers on return."""
    workdir.mkdir(parents=True, exist_ok=True)
    s3_port = free_port()
    server = S3Server(
        name="seaweedfs",
        endpoint_url=f"http://{HOST}:{s3_port}",
        access_key="firehose-test",
        secret_key="firehose-test-secret",
    )
    admin_port = free_port_with_grpc_twin()
    args = [
        find_binary("weed"),
        "mini",
        f"-dir={workdir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        # Each bucket takes a volume of its own, and the number of volumes is free disk space
        # over the volume size (1 GiB by default on a large disk): small volumes keep a test
        # session's hundred buckets from running out on a fuller disk.
        "-master.volumeSizeLimitMB=64",
        # The volume server's stop waits for its idle connections to time out (30 s default).
        "-idleTimeout=5",
        f"-master.port={free_port()}",
        f"-master.port.grpc={free_port()}",
        f"-volume.port={free_port()}",
        f"-volume.port.grpc={free_port()}",
        f"-filer.port={free_port()}",
        f"-filer.port.grpc={free_port()}",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={free_port()}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # The admin server always runs (it drives the maintenance workers); only its UI can go.
        "-admin.ui=false",
        f"-admin.port={admin_port}",
        f"-admin.port.grpc={admin_port + GRPC_PORT_OFFSET}",
        "-webdav=false",
        # Disabled or debug-only listeners still get free ports, in case a version opens them.
        f"-webdav.port={free_port()}",
        f"-debug.port={free_port()}",
        f"-s3.debug.port={free_port()}",
    ]
    args += _local_socket_flags(workdir)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
    }
    log_path = workdir / "weed.log"
    proc = _spawn(args, log_path, env)
    _wait_until_serving(server, proc, log_path)
    return server, proc


def start_moto(workdir: Path, port: int | None = None) -> tuple[S3Server, subprocess.Popen[bytes]]:
    """Start moto's server mode on `port` (a fresh one if None); S3 answers on return."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # moto accepts any credentials; fixed ones keep env() the same shape as for SeaweedFS.
    server = S3Server(
        name="moto",
        endpoint_url=f"http://{HOST}:{port}",
        access_key="firehose-test",
        secret_key="firehose-test-secret",
    )
    args = [find_binary("moto_server"), "-H", HOST, "-p", str(port)]
    log_path = workdir / "moto.log"
    proc = _spawn(args, log_path, dict(os.environ))
    _wait_until_serving(server, proc, log_path)
    return server, proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate `proc`, killing it if it outlives `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
