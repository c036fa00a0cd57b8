"""`/ready`, `/metrics`, and the status page (`/status`, fed by `/status.json`), served beside
the API on its port without authentication: they show counts and config summaries, never
secrets (no credentials, tokens or query strings)."""

from __future__ import annotations

import itertools
import time
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from firehose.destination import shown_target
from firehose.history import SAMPLE_SECONDS, Sample, kept
from firehose.readings import delivery_prefix, stream_readings
from firehose.stream import DeliveryStream

if TYPE_CHECKING:
    from firehose.service_view import Streams
    from firehose.telemetry import Telemetry

# The classic text format, which every Prometheus version reads (generate_latest writes it).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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
        now = time.time()
        streams = [
            self._stream_status(stream, now)
            for stream in sorted(self.service.streams.values(), key=lambda s: s.name)
        ]
        body = {
            "ready": self.service.ready,
            "time": now,
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
                "target": shown_target(stream.destination.target),
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
            "series": _series(list(history.samples), kept(stream, values), now, stream.name),
        }


def _series(samples: list[Sample], now: dict[str, float], at: float, name: str) -> dict[str, Any]:
    """Per sample: records and bytes per second in and delivered since the one before, and the
    data freshness then; the last point is now."""
    points = [(s.at, kept) for s in samples if (kept := s.stream(name)) is not None]
    points.append((at, now))
    rates = (
        "incoming_records",
        "incoming_bytes",
        "delivered_records",
        "delivered_bytes",
    )
    series: dict[str, list[float]] = {"time": [], "freshness_seconds": []}
    series |= {f"{key}_per_second": [] for key in rates}
    for (before_at, before), (after_at, after) in itertools.pairwise(points):
        seconds = after_at - before_at
        if seconds <= 0:
            continue
        series["time"].append(round(after_at, 3))
        for key in rates:
            rate = max(0.0, after[key] - before[key]) / seconds
            series[f"{key}_per_second"].append(round(rate, 3))
        series["freshness_seconds"].append(round(after["freshness_seconds"], 3))
    return series


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
