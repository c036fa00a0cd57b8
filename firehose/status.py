"""`/ready`, `/metrics`, and the status page (`/status`, fed by `/status.json`), served beside
the API on its port without authentication: they show counts and config summaries, never
secrets (no credentials, tokens or query strings)."""

from __future__ import annotations

import itertools
import re
import time
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from firehose.history import SAMPLE_SECONDS, Sample
from firehose.readings import delivery_prefix, stream_readings
from firehose.stream import DeliveryStream

if TYPE_CHECKING:
    from firehose.api import Streams
    from firehose.telemetry import Telemetry

# The classic text format, which every Prometheus version reads (generate_latest writes it).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Anything after `?` in a URL may be a token: the page shows the URL without it.
_QUERY = re.compile(r"\?\S*")
INDEX = b"""<!doctype html><html><head><meta charset="utf-8"><title>firehose</title></head>
<body><h1>firehose</h1><p>This service speaks the Amazon Data Firehose API at
<code>POST /</code>.</p><ul><li><a href="/status">status page</a></li>
<li><a href="/metrics">metrics</a> (Prometheus)</li><li><a href="/health">health</a></li>
<li><a href="/ready">ready</a></li></ul></body></html>"""


@cache
def status_page() -> bytes:
    return files("firehose").joinpath("status.html").read_bytes()


class StatusPages:
    def __init__(self, service: Streams, telemetry: Telemetry) -> None:
        self.service = service
        self.telemetry = telemetry

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status", self.page)
        app.router.add_get("/status.json", self.status_json)

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=INDEX, content_type="text/html")

    async def ready(self, request: web.Request) -> web.Response:
        """200 once every stream has opened; 503 before, and from the start of a shutdown."""
        ready = self.service.ready
        return web.json_response({"ready": ready}, status=200 if ready else 503, dumps=_dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        body = self.telemetry.metrics.render()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=status_page(), content_type="text/html", charset="utf-8")

    async def status_json(self, request: web.Request) -> web.Response:
        now = Sample(time.time(), {})
        streams = [
            self._stream_status(stream, now.at)
            for stream in sorted(self.service.streams.values(), key=lambda s: s.name)
        ]
        body = {
            "ready": self.service.ready,
            "time": now.at,
            "sample_seconds": SAMPLE_SECONDS,
            "streams": streams,
        }
        return web.json_response(body, dumps=_dumps, headers={"Cache-Control": "no-store"})

    def _stream_status(self, stream: DeliveryStream, now: float) -> dict[str, Any]:
        values = stream_readings(stream)
        section = stream.config.destination
        hints = stream.main.hints
        prefix = delivery_prefix(stream)
        quota = self.telemetry.quotas.get(stream.name)
        history = self.telemetry.history
        return {
            "name": stream.name,
            "type": stream.config.type,
            "destination": {
                "kind": stream.destination.kind,
                "target": _QUERY.sub("?…", stream.destination.target),
                "prefix": getattr(section, "prefix", None),
                "backup": stream.backup is not None,
            },
            "buffering": {
                "size_bytes": hints.size_bytes,
                "interval_seconds": hints.interval_in_seconds,
            },
            "quotas": None if quota is None else vars(quota.limits),
            "accepting": stream.accepting and stream.wal.failure is None,
            "delivery": stream.delivery_state.value,
            "buffered_bytes": values["_buffered_bytes"],
            "undelivered_bytes": stream.undelivered_bytes,
            "freshness_seconds": values[f"{prefix}.DataFreshness"],
            "totals": {
                "incoming_records": values["IncomingRecords"],
                "incoming_bytes": values["IncomingBytes"],
                "throttled_records": values["ThrottledRecords"],
                "delivered_records": values[f"{prefix}.Records"],
                "delivered_bytes": values[f"{prefix}.Bytes"],
            },
            "errors": [
                {"time": note.at, "message": note.message}
                for note in history.errors.get(stream.name, ())
            ],
            "series": _series(
                list(history.samples), Sample(now, {stream.name: values}), stream.name, prefix
            ),
        }


def _series(samples: list[Sample], now: Sample, name: str, prefix: str) -> dict[str, list[float]]:
    """Per sample: records and bytes per second in and delivered since the one before, and the
    data freshness then; the last point is now."""
    points = [s for s in samples if name in s.streams] + [now]
    series: dict[str, list[float]] = {
        "time": [],
        "incoming_records_per_second": [],
        "incoming_bytes_per_second": [],
        "delivered_records_per_second": [],
        "delivered_bytes_per_second": [],
        "freshness_seconds": [],
    }
    rates = (
        ("incoming_records_per_second", "IncomingRecords"),
        ("incoming_bytes_per_second", "IncomingBytes"),
        ("delivered_records_per_second", f"{prefix}.Records"),
        ("delivered_bytes_per_second", f"{prefix}.Bytes"),
    )
    for before, after in itertools.pairwise(points):
        seconds = after.at - before.at
        if seconds <= 0:
            continue
        old, new = before.streams[name], after.streams[name]
        series["time"].append(round(after.at, 3))
        for key, metric in rates:
            series[key].append(round(max(0.0, new[metric] - old[metric]) / seconds, 3))
        series["freshness_seconds"].append(round(new[f"{prefix}.DataFreshness"], 3))
    return series


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
