"""Files that survive a power cut: written aside, fsynced, renamed, and their folder fsynced."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def fsync_directory(path: Path) -> None:
    """Make a folder's entries (a new, renamed or deleted file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically: readers see the old file or the new, never a part.

    Folders it has to create are made durable too, so a file that was written stays reachable.
    """
    created = _make_folders(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for folder in [path.parent, *created]:
        fsync_directory(folder)


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p that returns the parents of the folders it created (whose entries changed)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
    return [new.parent for new in missing]
