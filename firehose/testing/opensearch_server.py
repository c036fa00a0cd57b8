"""osmem-server, an in-memory OpenSearch-compatible server, on 127.0.0.1 for tests and benchmarks.

Started from the binary its PyPI package ships (the test and bench extras install it), on a
port picked free, and stopped with its parent. Plain helpers: tests/conftest.py makes fixtures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firehose.testing.servers import HOST, START_DEADLINE_S, free_port, stop


def osmem_binary() -> str:
    """The `osmem-server` binary inside the installed `osmem_server` package."""
    spec = importlib.util.find_spec("osmem_server")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("osmem-server is not installed: pip install -e '.[test]'")
    return str(Path(spec.origin).parent / "bin" / "osmem-server")


@dataclass(frozen=True)
class SearchServer:
    """Where a running OpenSearch-compatible server answers."""

    url: str

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request; the decoded answer, error answers included."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    def documents(self, index: str) -> dict[str, Any]:
        """Every document of `index` (a pattern may be given): `_id` -> `_source`."""
        self.request("POST", f"/{index}/_refresh")
        answer = self.request("GET", f"/{index}/_search?size=10000")
        hits = answer.get("hits", {}).get("hits", [])
        return {hit["_id"]: hit["_source"] for hit in hits}

    def count(self, index: str) -> int:
        self.request("POST", f"/{index}/_refresh")
        return int(self.request("GET", f"/{index}/_count").get("count", 0))

    def indices(self) -> set[str]:
        return {entry["index"] for entry in self.request("GET", "/_cat/indices?format=json")}


def start_osmem(port: int | None = None) -> tuple[SearchServer, subprocess.Popen[bytes]]:
    """osmem-server on `port` (a free one if None), once it answers."""
    port = port or free_port()
    command = [
        osmem_binary(), "-addr", f"{HOST}:{port}", "-no-ja", "-no-stdin-watch",
        "-parent-pid", str(os.getpid()),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = SearchServer(f"http://{HOST}:{port}")
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            with urllib.request.urlopen(server.url, timeout=2):
                return server, proc
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"osmem-server did not start on port {port}: {exc}") from exc
            time.sleep(0.05)
