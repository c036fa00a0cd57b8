"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks: Debian's binaries,
a temporary data directory, a free port, every statement logged.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` user (its
directory made in /tmp, which that user can reach, unlike pytest's per-user temp folders).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from firehose.testing.servers import HOST, free_port

USER = "firehose"
PASSWORD = "firehose-test-password"
DATABASE = "warehouse"
START_TIMEOUT_SECONDS = 60


def _binary(name: str) -> str:
    """`name` from PATH, else from Debian's versioned directory (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise FileNotFoundError(
            f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)"
        )
    return candidates[0]


def _owner() -> str | None:
    """The user to run the cluster as: None for the current one, `postgres` when root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root needs a `postgres` user to own the cluster") from None
    return "postgres"


@dataclass
class PostgresServer:
    """A running cluster: stop it (or restart it) by `pg_ctl`, read its statement log."""

    directory: Path
    port: int
    owner: str | None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def jdbc_url(self, kind: str = "postgresql") -> str:
        return f"jdbc:{kind}://{HOST}:{self.port}/{DATABASE}"

    @property
    def conninfo(self) -> str:
        return f"host={HOST} port={self.port} dbname={DATABASE} user={USER} password={PASSWORD}"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=START_TIMEOUT_SECONDS)

    def start(self) -> None:
        self._run(
            _binary("pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses={HOST}",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(_binary("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def statements(self) -> str:
        """The server log: with log_statement=all it holds every statement received."""
        return self.log_path.read_text(errors="replace")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb, start on a free port, create the warehouse database and its password user."""
    owner = _owner()
    directory = Path(tempfile.mkdtemp(prefix="firehose-pg-", dir="/tmp"))
    if owner is not None:
        shutil.chown(directory, owner)
    server = PostgresServer(directory, free_port(), owner)
    password_file = directory / "pwfile"
    password_file.write_text(PASSWORD + "\n")
    if owner is not None:
        shutil.chown(password_file, owner)
    server._run(
        _binary("initdb"),
        "-D",
        str(server.data),
        "-U",
        USER,
        f"--pwfile={password_file}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-sync",
    )
    with (server.data / "postgresql.conf").open("a") as conf:
        conf.write("log_statement = 'all'\nfsync = off\nsynchronous_commit = off\n")
    server.start()
    _create_database(server)
    return server


def _create_database(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    admin = server.conninfo.replace(f"dbname={DATABASE}", "dbname=postgres")
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f"CREATE DATABASE {DATABASE}")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
