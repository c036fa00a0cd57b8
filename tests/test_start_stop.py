"""`firehose serve` refusing to start, and stopping on signals, run for real as a process."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firehose.service import raise_open_file_limit
from firehose.testing.servers import free_port
from firehose.testing.service_process import ServiceProcess, s3_stream

FILE_STREAM = "kept"


def streams(tmp_path: Path) -> list[dict[str, object]]:
    return [s3_stream(FILE_STREAM, "b", EndpointURL=f"file://{tmp_path / 's3'}")]


def serve(tmp_path: Path, data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`firehose serve` expected to refuse to start: stdout and stderr apart."""
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "s.yaml").write_text(
        f"name: s\ns3: {{bucket: b, endpoint_url: 'file://{tmp_path}'}}\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOSE_")}
    return subprocess.run(
        [sys.executable, "-m", "firehose.cli", "serve", "--config", str(configs),
         "--data-dir", str(data_dir), "--port", str(port)],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cannot start: ") and reason in lines[0], lines[0]
    assert "listening" not in result.stdout + result.stderr


@pytest.fixture
def started() -> Iterator[list[ServiceProcess]]:
    services: list[ServiceProcess] = []
    yield services
    for service in services:
        service.ensure_stopped()


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = serve(tmp_path, tmp_path / "data", taken.getsockname()[1])
    assert_refused(result, "cannot listen on 127.0.0.1:")
    assert "in use" in result.stderr


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    # Tests run as root, where chmod does not stop writes: a data dir below a regular file is
    # the unwritable case reachable here. The same check (create a file in it) covers a
    # read-only mount or a directory without write permission.
    (tmp_path / "file").write_text("not a directory")
    result = serve(tmp_path, tmp_path / "file" / "data", free_port())
    assert_refused(result, f"data dir {tmp_path / 'file' / 'data'} is not writable: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        result = serve(tmp_path, data, free_port())
    finally:
        data.chmod(0o700)
    assert_refused(result, "is not writable: Permission denied")


def test_busy_data_dir(tmp_path: Path, started: list[ServiceProcess]) -> None:
    first = ServiceProcess(tmp_path, streams(tmp_path))
    started.append(first)
    first.start()
    result = serve(tmp_path, tmp_path / "data", free_port())
    assert_refused(result, "is in use by another firehose process")
    assert first.terminate() == 0


def test_second_signal_exits_at_once_and_the_log_keeps_the_records(
    tmp_path: Path, started: list[ServiceProcess]
) -> None:
    with socket.socket() as closed:  # a port nothing listens on: every delivery fails
        closed.bind(("127.0.0.1", 0))
        dead_end = f"http://127.0.0.1:{closed.getsockname()[1]}"
    stuck = ServiceProcess(
        tmp_path,
        streams(tmp_path),
        env={"FIREHOSE_S3_ENDPOINT_URL": dead_end, "FIREHOSE_SHUTDOWN_TIMEOUT_SECONDS": "60"},
    )
    started.append(stuck)
    stuck.start()
    stuck.client().put_record(DeliveryStreamName=FILE_STREAM, Record={"Data": b"keep me\n"})
    assert stuck.proc is not None
    stuck.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "delivering for up to 60s" not in stuck.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "delivering for up to 60s" in stuck.log()
    began = time.monotonic()
    stuck.proc.send_signal(signal.SIGINT)
    assert stuck.proc.wait(10) == 1
    assert time.monotonic() - began < 5
    assert "exiting now" in stuck.log()

    # The next start delivers what the forced exit left in the log.
    again = ServiceProcess(tmp_path, streams(tmp_path), port=stuck.port)
    started.append(again)
    again.start()
    assert again.terminate() == 0
    delivered = [p.read_bytes() for p in (tmp_path / "s3").rglob("*") if p.is_file()]
    assert delivered == [b"keep me\n"]


def test_shutdown_timeout_bounds_the_first_signal(
    tmp_path: Path, started: list[ServiceProcess]
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_end = f"http://127.0.0.1:{closed.getsockname()[1]}"
    stuck = ServiceProcess(
        tmp_path,
        streams(tmp_path),
        env={"FIREHOSE_S3_ENDPOINT_URL": dead_end, "FIREHOSE_SHUTDOWN_TIMEOUT_SECONDS": "1"},
    )
    started.append(stuck)
    stuck.start()
    stuck.client().put_record(DeliveryStreamName=FILE_STREAM, Record={"Data": b"late\n"})
    began = time.monotonic()
    assert stuck.terminate(timeout=30) == 0
    assert time.monotonic() - began < 10
    assert "undelivered records stay in the log" in stuck.log()


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"hard open-file limit {hard} leaves nothing to show")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
