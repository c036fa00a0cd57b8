"""Log set-up: plain text or one JSON object per line, with the request and stream in context.

The API handler sets `REQUEST_ID` and `STREAM_NAME` for the request it serves, and each stream's
delivery task sets `STREAM_NAME`; every log line written meanwhile carries them.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
STREAM_NAME: ContextVar[str | None] = ContextVar("delivery_stream_name", default=None)
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then
    `request_id` and `delivery_stream_name` when known, and `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        stream = STREAM_NAME.get()
        if stream is not None:
            entry["delivery_stream_name"] = stream
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Log to stderr at `level`, as text or JSON lines."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
