"""Segmented write-ahead log: a record is acknowledged only once its frame is on disk.

Layout of a stream's log directory (the frame format is in `firehose.frames`):

    <dir>/<first seq, 20 digits>.wal   segments, append-only, a new one at every start
    <dir>/delivered                    the delivered watermark: every seq <= it has been delivered

Appends are written at once and made durable by a group commit: one fdatasync, in a thread of its
own, for every append that arrived meanwhile. On open, a torn or corrupt frame is reported and
skipped (the scan resynchronises on the next valid frame), the segment is cut back to its last
valid frame, and records missing from the sequence are reported: the service never crash-loops on
its log, and never loses records silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firehose.durable import fsync_directory, lock_exclusively, replace_durably
from firehose.errors import LogKeyError, WalError
from firehose.frames import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    Frame,
    KeyLookup,
    SealedFrame,
    SealingKey,
    can_follow,
    cut_frame_size,
    encode_frame,
    encode_frame_parts,
    parse_frame,
    resync,
    unseal,
)

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "READ_CHUNK",
    "SCAN_CHUNK",
    "SEGMENT_SUFFIX",
    "WATERMARK_FILE",
    "Corruption",
    "Frame",
    "Problem",
    "RecoveryReport",
    "SegmentScanner",
    "WalReader",
    "WriteAheadLog",
    "encode_frame",
    "scan_frames",
]

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".wal"
WATERMARK_FILE = "delivered"
LOCK_FILE = "lock"
LOG_ID_FILE = "log-id"
READ_CHUNK = 8 * 1024 * 1024  # what WalReader.read returns by default
SCAN_CHUNK = 8 * 1024 * 1024  # what recovery reads at once: its memory, bar one larger frame
MIN_READ = 1024 * 1024  # a reader's smallest read, however small its budget: fewer syscalls

ReadAt = Callable[[int, int], bytes]  # (offset, length) -> the bytes there, shorter at the end
Scanned = tuple[Frame | None, int, int]  # a frame, or None for a bad stretch; its start and end
ProblemKind = Literal["corrupt", "gap", "watermark-beyond-end"]


@dataclass(slots=True)
class Segment:
    path: Path
    first_seq: int
    size: int = 0  # bytes of valid frames; for the active segment, bytes written
    synced_size: int = 0  # bytes known to be on disk (what readers may see)
    fd: int | None = None
    key_ids: set[bytes] = field(default_factory=set)  # the data keys its sealed frames name


@dataclass
class Corruption:
    """A stretch of a segment that held no valid frame."""

    path: Path
    offset: int
    length: int


@dataclass(frozen=True)
class Problem:
    """Damage found on opening the log, for the logs and /health.

    `kind` is "corrupt" (bytes skipped), "gap" (seqs that no segment holds) or
    "watermark-beyond-end" (the watermark names seqs the log never held). `records_affected`
    counts the records lost, or for the watermark how far beyond the log it is; None when the
    count cannot be known (bytes at the very end of the log, most likely a write that a crash cut
    short and that was never acknowledged).
    """

    kind: ProblemKind
    message: str
    records_affected: int | None


@dataclass
class RecoveryReport:
    """What opening the log found: kept for the logs, /health and tests."""

    segments: int = 0
    frames: int = 0
    records_pending: int = 0
    bytes_pending: int = 0
    corruptions: list[Corruption] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def records_lost(self) -> int:
        """Records known lost (gaps and corrupt stretches), not counting the watermark's."""
        return sum(
            p.records_affected or 0 for p in self.problems if p.kind != "watermark-beyond-end"
        )


class SegmentScanner:
    """Walks one segment's frames a chunk at a time: the one scanner of recovery and readers.

    Memory stays bounded by the chunk, or by one frame larger than it. Frames are slices of their
    chunk. A bad stretch is skipped by resynchronising, and reported once, whole, even when it
    spans chunks.
    """

    def __init__(self, first_seq: int | None, keys: KeyLookup | None = None) -> None:
        self.keys = keys or no_keys
        self.offset = 0  # where the next chunk starts
        self.last_seq = None if first_seq is None else first_seq - 1  # of the last good frame
        self.good_end = 0  # where that frame ended: frames found by resync are judged by it
        self._bad_start: int | None = None  # where the bad stretch being crossed began

    def step(self, read_at: ReadAt, size: int, length: int) -> list[Scanned]:
        """Scan a chunk of up to `length` bytes at `offset`, of a segment `size` bytes long.

        `offset` moves past the chunk, or to a frame the chunk's end cut, to read on there. It
        does not move if nothing could be read (the file is shorter than `size`).
        """
        base = self.offset
        data = read_at(base, min(max(length, HEADER_SIZE), size - base))
        if not data:
            return []
        more = base + len(data) < size
        view = memoryview(data)
        scanned: list[Scanned] = []
        pos = 0
        while pos < len(data):
            at = base + pos
            found = parse_frame(view, pos)
            if found is None:
                full = cut_frame_size(view, pos)
                if full is not None and at + full <= size:
                    if pos > 0:
                        break  # the next chunk starts at this frame
                    found = parse_frame(memoryview(read_at(at, full)), 0)  # larger than a chunk
            frame = None
            if found is not None and (
                at == self.good_end or can_follow(found, self.last_seq, at - self.good_end)
            ):
                # A missing key raises: frames it cannot read are not garbage to skip.
                frame = unseal(found, self.keys) if isinstance(found, SealedFrame) else found
            if frame is not None:
                self._end_bad_stretch(scanned, at)
                end = at + frame.size
                scanned.append((frame, at, end))
                self.last_seq, self.good_end = frame.last_seq, end
                pos = end - base
                continue
            if self._bad_start is None:
                self._bad_start = at
            pos = resync(data, pos, self.last_seq, self.good_end - base, more_follows=more)
        self.offset = base + pos
        if self.offset >= size:
            self._end_bad_stretch(scanned, size)
        return scanned

    def _end_bad_stretch(self, scanned: list[Scanned], end: int) -> None:
        if self._bad_start is not None:
            scanned.append((None, self._bad_start, end))
            self._bad_start = None


def no_keys(key_id: bytes) -> AESGCM:
    """The key lookup of a log given no keys: a sealed frame cannot be read."""
    raise LogKeyError(f"a frame is sealed with data key {key_id.hex()} and no key is available")


def scan_frames(
    data: bytes, first_seq: int | None = None, keys: KeyLookup | None = None
) -> Iterator[Scanned]:
    """Scan a whole segment held in memory, for tools and tests: (frame or None, start, end).

    Given the segment's `first_seq`, a frame found by resynchronising must continue the seqs
    before it.
    """
    scanner = SegmentScanner(first_seq, keys)
    while scanner.offset < len(data):
        yield from scanner.step(lambda at, length: data[at : at + length], len(data), len(data))


def _read_at(fd: int) -> ReadAt:
    return lambda offset, length: os.pread(fd, length, offset)


def _write_all(fd: int, *parts: bytes) -> None:
    """Write `parts` back to back to `fd`: one gathered write unless it comes up short."""
    written = os.writev(fd, parts)
    if written == sum(map(len, parts)):
        return
    rest = memoryview(b"".join(parts))[written:]  # a short write: rare enough to copy
    while rest:
        rest = rest[os.write(fd, rest) :]


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


class _DirectoryNotSynced(Exception):
    """The log folder could not be fsynced (no fd left, say): no written data is in doubt."""


class _Recovery:
    """Follows the seqs across the segments being checked: counts what is pending, reports what
    is missing."""

    def __init__(self, report: RecoveryReport, delivered_seq: int) -> None:
        self.report = report
        self.delivered_seq = delivered_seq
        self.expected = delivered_seq + 1  # the next seq the log should hold
        self.seen_end = 0  # the highest seq the log shows was ever handed out
        self._damage: Corruption | None = None  # a bad stretch since the last good frame

    def segment_starts(self, segment: Segment) -> None:
        # A segment is named after the next seq when it was created: every lower seq was used.
        self.seen_end = max(self.seen_end, segment.first_seq - 1)
        self._arrive(segment.first_seq, f"before {segment.path}")
        self.expected = max(self.expected, segment.first_seq)

    def frame(self, segment: Segment, frame: Frame, offset: int) -> None:
        if frame.key_id is not None:
            segment.key_ids.add(frame.key_id)
        self._arrive(frame.first_seq, f"in {segment.path} before offset {offset}")
        self.expected = max(self.expected, frame.last_seq + 1)
        self.seen_end = max(self.seen_end, frame.last_seq)
        self.report.frames += 1
        pending = frame.lengths[max(0, self.delivered_seq + 1 - frame.first_seq) :]
        self.report.records_pending += len(pending)
        self.report.bytes_pending += sum(pending)

    def bad_stretch(self, corruption: Corruption) -> None:
        self.report.corruptions.append(corruption)
        self._damage = corruption

    def finish(self) -> None:
        if self._damage is not None:
            self._add_corrupt(self._damage, None)
        delivered_seq = self.delivered_seq
        if delivered_seq > self.seen_end:
            beyond = delivered_seq - self.seen_end
            self._add(
                "watermark-beyond-end",
                f"the delivered watermark {delivered_seq} is {beyond} records beyond the last "
                f"record the log holds or held ({self.seen_end}): segments or their tails were "
                "lost, or the watermark is not this log's",
                beyond,
            )

    def _arrive(self, seq: int, where: str) -> None:
        """Seqs from `expected` up to `seq` are missing: blame the bad stretch before, if any."""
        lost = max(0, seq - self.expected)
        if self._damage is not None:
            self._add_corrupt(self._damage, lost)
            self._damage = None
        elif lost:
            self._add(
                "gap",
                f"records {self.expected}-{seq - 1} are missing {where}: "
                "a segment was deleted or lost",
                lost,
            )

    def _add_corrupt(self, corruption: Corruption, lost: int | None) -> None:
        if lost is None:
            outcome = (
                "at the end of the log: a write a crash cut short (never acknowledged), "
                "or records lost"
            )
        elif lost:
            outcome = f"records {self.expected}-{self.expected + lost - 1} lost"
        else:
            outcome = "no record lost"
        self._add(
            "corrupt",
            f"{corruption.length} corrupt or torn bytes at offset {corruption.offset} of "
            f"{corruption.path} skipped: {outcome}",
            lost,
        )

    def _add(self, kind: ProblemKind, message: str, records: int | None) -> None:
        self.report.problems.append(Problem(kind, message, records))
        if records is None:
            log.error("write-ahead log: %s (records affected unknown)", message)
        else:
            log.error("write-ahead log: %s (%d records affected)", message, records)


class WriteAheadLog:
    """One stream's log. All methods but the `_sync_*` helpers run on the event loop's thread."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        keys: KeyLookup | None = None,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.keys = keys or no_keys  # the data keys of the sealed frames it holds
        # Given: new frames are sealed with it. The log reads sealed and plain frames alike.
        self.sealing: SealingKey | None = None
        self.segments: list[Segment] = []
        self.delivered_seq = 0
        self.next_seq = 1
        self._active: Segment | None = None
        self._new_segment_unsynced = False
        self._written = 0  # appends written so far
        self._synced = 0  # appends known durable
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._dirty: list[Segment] = []
        self._in_flight: list[Segment] = []  # segments the running fdatasync covers
        self._delivered_wanted = 0  # the highest watermark asked for, maybe not written yet
        self._syncer: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self._lock_fd: int | None = None
        self._log_id = b""

    @property
    def failure(self) -> str | None:
        """Why the log refuses every write for good (an fsync of written data failed), or None."""
        if self._failed is None:
            return None
        return f"poisoned: an fsync of written data failed: {self._failed}"

    # -- opening --------------------------------------------------------------------------

    def open(self) -> RecoveryReport:
        """Read the watermark, drop delivered segments, check the rest. Blocking: use a thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._log_id = self._read_or_create_log_id()
        self.delivered_seq = self._read_watermark()
        self._delivered_wanted = self.delivered_seq
        found = self._find_segments()
        report = RecoveryReport()
        recovery = _Recovery(report, self.delivered_seq)
        for index, segment in enumerate(found):
            following = found[index + 1].first_seq if index + 1 < len(found) else None
            if following is not None and following - 1 <= self.delivered_seq:
                segment.path.unlink(missing_ok=True)
                continue
            recovery.segment_starts(segment)
            if self._check_segment(segment, recovery):
                segment.synced_size = segment.size
                self.segments.append(segment)
            else:
                segment.path.unlink(missing_ok=True)
        recovery.finish()
        # Past every seq ever handed out, the watermark's included: a seq names a delivered
        # object (see object_id), so using one twice could overwrite delivered records.
        self.next_seq = max(recovery.expected, self.delivered_seq + 1)
        report.segments = len(self.segments)
        return report

    def _find_segments(self) -> list[Segment]:
        found = []
        for path in self.directory.glob(f"*{SEGMENT_SUFFIX}"):
            name = path.name.removesuffix(SEGMENT_SUFFIX)
            if not (name.isascii() and name.isdigit()):
                log.error("write-ahead log %s: not a segment name, file ignored", path)
                continue
            found.append(Segment(path, int(name)))
        found.sort(key=lambda segment: segment.first_seq)
        return found

    def _check_segment(self, segment: Segment, recovery: _Recovery) -> bool:
        """Validate every frame, cut a bad tail off, count what is still to deliver.

        Returns whether the segment holds a valid frame. Reads it a chunk at a time: a segment
        may be larger than the memory recovery should take.
        """
        scanner = SegmentScanner(segment.first_seq, self.keys)
        with segment.path.open("r+b") as handle:
            size = os.fstat(handle.fileno()).st_size
            read_at = _read_at(handle.fileno())
            while scanner.offset < size:
                before = scanner.offset
                for frame, start, end in scanner.step(read_at, size, SCAN_CHUNK):
                    if frame is None:
                        recovery.bad_stretch(Corruption(segment.path, start, end - start))
                        continue
                    recovery.frame(segment, frame, start)
                if scanner.offset == before:
                    log.error("write-ahead log %s: shrank while being checked", segment.path)
                    break
            segment.size = scanner.good_end
            if segment.size == 0:
                return False
            if segment.size < size:
                handle.truncate(segment.size)
                os.fsync(handle.fileno())
        return True

    def _lock(self) -> None:
        """Refuse a second process on this log: it would deliver the same records again."""
        fd = lock_exclusively(self.directory / LOCK_FILE)
        if fd is None:
            raise WalError(
                f"{self.directory} is in use by another firehose process: "
                "give each instance its own --data-dir"
            )
        self._lock_fd = fd

    def _read_or_create_log_id(self) -> bytes:
        path = self.directory / LOG_ID_FILE
        try:
            text = path.read_text().strip()
            if len(text) == 32:
                return bytes.fromhex(text)
        except (OSError, ValueError):
            pass
        log_id = os.urandom(16)
        replace_durably(path, log_id.hex().encode())
        return log_id

    def object_id(self, first_seq: int) -> str:
        """A uuid4-shaped id fixed by this log and a batch's first seq (see BatchBuilder)."""
        digest = hashlib.sha256(self._log_id + first_seq.to_bytes(8, "little")).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def _read_watermark(self) -> int:
        path = self.directory / WATERMARK_FILE
        try:
            raw = path.read_bytes().strip()
        except FileNotFoundError:
            return 0
        if raw.isdigit():  # ASCII digits only: no sign, no "_", no other scripts' digits
            return int(raw)
        # A torn watermark is safe to ignore: delivery restarts from the oldest kept segment.
        log.error("write-ahead log %s: unreadable watermark %r ignored", path, raw[:40])
        return 0

    # -- appending ------------------------------------------------------------------------

    def append(self, records: list[bytes], arrival_ms: int) -> tuple[int, int]:
        """Write one frame now; durable only after `await sync()`. Returns (first, last) seq."""
        if self._failed is not None:
            raise WalError(f"write-ahead log failed earlier: {self._failed}")
        first_seq = self.next_seq
        sealing = self.sealing
        header, payload = encode_frame_parts(first_seq, arrival_ms, records, sealing)
        frame_size = len(header) + len(payload)
        if len(payload) > MAX_PAYLOAD:
            # Recovery and readers take a longer frame for garbage: never acknowledge one.
            raise WalError(f"a put of {frame_size} bytes is larger than a log frame may be")
        segment = self._segment_for(frame_size)
        try:
            _write_all(segment.fd, header, payload)  # type: ignore[arg-type]
        except OSError as exc:
            # The segment may now end in a partial frame: start a fresh one for what follows.
            self._retire_active()
            if segment.size == 0:
                self._drop_empty(segment)
            raise WalError(f"cannot write the write-ahead log: {exc}") from exc
        segment.size += frame_size
        if sealing is not None:
            segment.key_ids.add(sealing.key_id)
        self.next_seq = first_seq + len(records)
        self._written += 1
        if not self._dirty or self._dirty[-1] is not segment:
            self._dirty.append(segment)
        return first_seq, self.next_seq - 1

    def _segment_for(self, frame_size: int) -> Segment:
        active = self._active
        if active is not None and active.size + frame_size <= self.segment_bytes:
            return active
        if active is not None and active.size > 0:
            self._retire_active()
        elif active is not None:
            return active
        path = self.directory / _segment_name(self.next_seq)
        try:
            # O_EXCL: a segment is never appended to by two runs, nor after bytes it did not count.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError as exc:
            raise WalError(f"cannot create a write-ahead log segment: {exc}") from exc
        segment = Segment(path, self.next_seq, fd=fd)
        self.segments.append(segment)
        self._active = segment
        self._new_segment_unsynced = True
        return segment

    def _retire_active(self) -> None:
        """Stop writing to the active segment; its fd closes after its last sync."""
        active = self._active
        if (
            active is not None
            and active not in self._dirty
            and active not in self._in_flight
            and active.fd is not None
        ):
            os.close(active.fd)
            active.fd = None
        self._active = None

    def _drop_empty(self, segment: Segment) -> None:
        """Forget a segment whose first frame could not be written, and its partial bytes."""
        self.segments.remove(segment)
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None
        try:
            segment.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("write-ahead log %s: cannot remove: %s", segment.path, exc)

    async def sync(self) -> None:
        """Return once every append made before this call is on disk (group commit).

        WalError if not: for good once an fsync of written data failed (see `failure`), for this
        call only if the folder could not be fsynced (the next sync retries it).
        """
        if self._failed is not None:
            # Never retry a failed fsync: a retry can succeed although the data was lost.
            raise WalError(f"write-ahead log failed: {self._failed}")
        target = self._written
        if self._synced >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.create_task(self._sync_loop())
        await future

    async def _sync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            target = self._written
            dirty, self._dirty = self._dirty, []
            sizes = [segment.size for segment in dirty]
            new_segment, self._new_segment_unsynced = self._new_segment_unsynced, False
            fds = [segment.fd for segment in dirty if segment.fd is not None]
            # While the thread syncs them, these fds must stay open (see _retire_active).
            self._in_flight = dirty
            try:
                await loop.run_in_executor(self._io, self._sync_files, fds, new_segment)
            except _DirectoryNotSynced as exc:
                # Nothing written is in doubt: fail these puts (their producers retry) and fsync
                # it all again on the next sync, the folder included, before acknowledging.
                self._dirty = dirty + [s for s in self._dirty if s not in dirty]
                self._new_segment_unsynced = True
                log.error("write-ahead log %s: %s", self.directory, exc)
                self._fail_waiters(WalError(str(exc)))
                return
            except Exception as exc:
                # fsync failure leaves the page cache's state unknown: refuse further writes.
                self._failed = exc
                log.critical("write-ahead log %s: fsync failed: %s", self.directory, exc)
                self._fail_waiters(WalError(f"fsync failed: {exc}"))
                return
            finally:
                self._in_flight = []
            for segment, size in zip(dirty, sizes, strict=True):
                segment.synced_size = size
                if (
                    segment is not self._active
                    and segment not in self._dirty
                    and segment.fd is not None
                ):
                    os.close(segment.fd)
                    segment.fd = None
            self._synced = target
            still_waiting = []
            for wanted, future in self._waiters:
                if wanted <= target:
                    if not future.done():
                        future.set_result(None)
                else:
                    still_waiting.append((wanted, future))
            self._waiters = still_waiting

    def _fail_waiters(self, error: WalError) -> None:
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        self._waiters = []

    def _sync_files(self, fds: list[int], new_segment: bool) -> None:
        for fd in fds:
            os.fdatasync(fd)
        if new_segment:
            try:
                fsync_directory(self.directory)
            except OSError as exc:
                # Opening the folder fails when the process is out of fds (EMFILE): that says
                # nothing about the data, unlike a failed fdatasync, so it must not poison the log.
                raise _DirectoryNotSynced(f"cannot fsync the log folder: {exc}") from exc

    # -- delivery watermark ---------------------------------------------------------------

    async def mark_delivered(self, seq: int) -> None:
        """Persist that every record up to `seq` is delivered, then delete segments below it."""
        if seq <= max(self.delivered_seq, self._delivered_wanted):
            return  # the watermark never goes back, even when calls overlap
        self._delivered_wanted = seq
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._io, self._write_watermark, seq)
        except OSError as exc:
            if self._delivered_wanted == seq:
                self._delivered_wanted = self.delivered_seq  # so that a retry writes it
            raise WalError(f"cannot write the delivered watermark: {exc}") from exc
        self.delivered_seq = max(self.delivered_seq, seq)
        doomed = []
        for index, segment in enumerate(self.segments[:-1]):
            following = self.segments[index + 1].first_seq
            if following - 1 <= seq and segment is not self._active and segment.fd is None:
                doomed.append(segment)
        if doomed:
            self.segments = [s for s in self.segments if s not in doomed]
            await loop.run_in_executor(self._io, self._delete, [s.path for s in doomed])

    def _write_watermark(self, seq: int) -> None:
        # Never torn, and durable before any segment below it is deleted.
        replace_durably(self.directory / WATERMARK_FILE, str(seq).encode())

    @staticmethod
    def _delete(paths: list[Path]) -> None:
        # A segment that cannot be deleted costs disk, not data: its records are delivered.
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("write-ahead log: cannot delete delivered segment %s: %s", path, exc)

    # -- reading --------------------------------------------------------------------------

    def reader(self, after_seq: int | None = None) -> WalReader:
        return WalReader(self, self.delivered_seq if after_seq is None else after_seq)

    def key_ids_in_use(self) -> set[bytes]:
        """The data keys that frames still in the log need, and the one sealing new frames."""
        in_use = {key_id for segment in self.segments for key_id in segment.key_ids}
        if self.sealing is not None:
            in_use.add(self.sealing.key_id)
        return in_use

    def committed(self) -> list[tuple[Path, int, int]]:
        """(path, first seq, durable size) of every segment: what a reader may read now."""
        return [(s.path, s.first_seq, s.synced_size) for s in self.segments]

    async def close(self) -> None:
        if self._syncer is not None:
            await asyncio.shield(self._syncer)
        for segment in self.segments:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
        self._active = None
        self._io.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


class WalReader:
    """Reads committed frames in order, from the first record after `after_seq`."""

    def __init__(self, wal: WriteAheadLog, after_seq: int) -> None:
        self._wal = wal
        self.after_seq = after_seq
        self._first_seq: int | None = None  # the segment being read; earlier ones are done
        self._scanner = SegmentScanner(None, wal.keys)  # where in it, and its last good frame

    async def read(self, max_bytes: int = READ_CHUNK) -> list[Frame]:
        """Committed frames not read yet, about `max_bytes` of them; [] when caught up.

        Frames may start before `after_seq` (a batch can end inside a frame): callers skip the
        records they already have by seq.
        """
        view = self._wal.committed()
        loop = asyncio.get_running_loop()
        frames = await loop.run_in_executor(None, self._read_sync, view, max_bytes)
        if frames:
            self.after_seq = max(self.after_seq, frames[-1].last_seq)
        return frames

    def _read_sync(self, view: list[tuple[Path, int, int]], max_bytes: int) -> list[Frame]:
        frames: list[Frame] = []
        budget = max_bytes
        for index, (path, first_seq, size) in enumerate(view):
            if self._first_seq is not None and first_seq < self._first_seq:
                continue  # read already: a segment is left only once all of it is durable
            following = view[index + 1][1] if index + 1 < len(view) else None
            if following is not None and following - 1 <= self.after_seq:
                continue  # everything in it was read already
            if size == 0:
                break  # nothing of it is durable yet, so nothing after it is either
            if first_seq != self._first_seq:
                self._first_seq = first_seq
                self._scanner = SegmentScanner(first_seq, self._wal.keys)
            if self._scanner.offset < size:
                budget = self._read_segment(path, size, budget, frames)
            if budget <= 0:
                break
        return frames

    def _read_segment(self, path: Path, size: int, budget: int, frames: list[Frame]) -> int:
        """Append frames of the segment being read to `frames`; returns the budget left."""
        scanner = self._scanner
        fd = os.open(path, os.O_RDONLY)
        try:
            read_at = _read_at(fd)
            while scanner.offset < size and budget > 0:
                before = scanner.offset
                # One chunk for the whole budget: its frames are slices of it, copied no further.
                for frame, start, end in scanner.step(read_at, size, max(budget, MIN_READ)):
                    if frame is None:
                        log.error(
                            "write-ahead log %s: %d corrupt bytes at offset %d skipped",
                            path,
                            end - start,
                            start,
                        )
                    elif frame.last_seq > self.after_seq:
                        frames.append(frame)
                        # Only what is returned counts: frames skipped by seq do not, or a
                        # reader starting deep inside a segment would answer [] before caught up.
                        budget -= frame.size
                if scanner.offset == before:
                    log.error("write-ahead log %s: shorter than its committed size", path)
                    return 0
        finally:
            os.close(fd)
        return budget
