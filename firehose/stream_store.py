"""Delivery streams made through the API, kept in the data dir so they outlive a restart.

One JSON file per stream (`data_dir/api-streams/<name>.json`), each replaced atomically: after a
crash at any point a stream's file holds either its state before a change or after it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from firehose.durable import fsync_directory, replace_durably

log = logging.getLogger(__name__)

STORE_FOLDER = "api-streams"
SUFFIX = ".json"
# A stored request may hold secrets (access keys, passwords, HEC tokens): owner only.
FILE_MODE = 0o600
FOLDER_MODE = 0o700


@dataclass
class StoredStream:
    """What the API made of one stream: its `CreateDeliveryStream` body as updated since
    (encryption input included, tags apart), and the state Describe shows."""

    request: dict[str, Any]
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
    # Key -> value, in the order they were first given.
    tags: dict[str, str] = field(default_factory=dict)
    # ENABLED or DISABLED: where the last Start/Stop left it.
    encryption_status: str = "DISABLED"
    # When each Start/Stop call of the last 24 hours was made (their count is limited).
    encryption_calls: list[float] = field(default_factory=list)
    # Set once a delete is accepted: a restart finishes it instead of bringing the stream back.
    deleting: bool = False
    # The delete accepted was forced: a restart drops the log instead of delivering it first.
    force_deleting: bool = False

    @property
    def name(self) -> str:
        return str(self.request["DeliveryStreamName"])


class StreamStore:
    """The stored streams of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / STORE_FOLDER

    def path(self, name: str) -> Path:
        # Stream names are [a-zA-Z0-9_.-]+: with the suffix, always a plain file name.
        return self.folder / f"{name}{SUFFIX}"

    def load(self) -> list[StoredStream]:
        """Every stored stream; a file that cannot be read is reported and skipped."""
        if not self.folder.is_dir():
            return []
        self.folder.chmod(FOLDER_MODE)  # a folder made before it was kept private
        streams = []
        for path in sorted(self.folder.iterdir()):
            if not path.name.endswith(SUFFIX) or path.name.endswith(".tmp"):
                continue
            try:
                path.chmod(FILE_MODE)
                streams.append(StoredStream(**orjson.loads(path.read_bytes())))
            except (OSError, ValueError, TypeError) as exc:
                log.error("stored stream %s cannot be read and is ignored: %s", path, exc)
        return streams

    def save(self, stream: StoredStream) -> None:
        """Write `stream` durably: temp file, fsync, rename, fsync of the folder."""
        replace_durably(
            self.path(stream.name),
            orjson.dumps(asdict(stream)),
            mode=FILE_MODE,
            folder_mode=FOLDER_MODE,
        )

    def remove(self, name: str) -> None:
        path = self.path(name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_directory(self.folder)
