"""Files that survive a power cut: written aside, fsynced, renamed, and their folder fsynced."""

from __future__ import annotations

import fcntl
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


def replace_durably(
    path: Path, data: bytes, *, mode: int = 0o666, folder_mode: int = 0o777
) -> None:
    """Replace `path` with `data` atomically: readers see the old file or the new, never a part.

    Folders it has to create are made durable too, so a file that was written stays reachable.
    `mode` and `folder_mode` (for the file's own folder, if created) are narrowed by the umask;
    the file has its mode from the start, so a secret is never readable by others.
    """
    created = _make_folders(path.parent, folder_mode)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for folder in [path.parent, *created]:
        fsync_directory(folder)


def _make_folders(folder: Path, mode: int) -> list[Path]:
    """mkdir -p that returns the parents of the folders it created (whose entries changed);
    the innermost folder gets `mode`."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=mode if new is missing[0] else 0o777, exist_ok=True)
    return [new.parent for new in missing]


def lock_exclusively(path: Path) -> int | None:
    """Hold an exclusive flock on `path` (created if missing) for as long as the returned fd is
    open; None when another process holds it. Raises OSError when the file cannot be opened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
