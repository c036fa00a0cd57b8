"""Shared fixtures: real S3-compatible servers on 127.0.0.1, one of each per session."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from firehose.testing.opensearch_server import SearchServer, start_osmem
from firehose.testing.postgres import PostgresServer, start_postgres
from firehose.testing.servers import S3Server, start_moto, start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess
from tests.kinesis_fixtures import kinesalite, kinesis  # noqa: F401  (Kinesis servers)

# s3_server param -> the session fixture that runs that server.
_SERVER_FIXTURES = {"seaweedfs": "seaweedfs", "moto": "moto_s3"}


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS (`weed mini`): a real object store, started once per session."""
    server, proc = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto in server mode: a second S3 implementation, started once per session."""
    server, proc = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session", params=list(_SERVER_FIXTURES), ids=list(_SERVER_FIXTURES))
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn; getfixturevalue so a run selecting one starts only that one."""
    server: S3Server = request.getfixturevalue(_SERVER_FIXTURES[request.param])
    return server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh bucket per test, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def search_server() -> Iterator[SearchServer]:
    """osmem-server: an in-memory OpenSearch-compatible cluster, started once per session."""
    server, proc = start_osmem()
    try:
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (Debian's binaries), started once per session."""
    server = start_postgres()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):  # already stopped by a test that failed midway
            server.stop("immediate")
        server.remove()


@pytest.fixture
def services() -> Iterator[list[ServiceProcess]]:
    """`firehose serve` processes a test starts, killed if the test leaves them running."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.ensure_stopped()
