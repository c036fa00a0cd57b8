"""Segmented write-ahead log: a record is acknowledged only once its frame is on disk.

Layout of a stream's log directory:

    <dir>/<first seq, 20 digits>.wal   segments, append-only, a new one at every start
    <dir>/delivered                    the delivered watermark: every seq <= it has been delivered

A frame holds the records of one put call (one PutRecord or PutRecordBatch):

    magic "FHW1" | payload length u32 | crc32 u32 | first seq u64 | count u32 | arrival ms u64
    payload: count x u32 record lengths, then the records' bytes back to back

The crc covers everything after itself. Appends are written at once and made durable by a group
commit: one fdatasync, in a thread of its own, for every append that arrived meanwhile. On open,
a torn or corrupt frame is reported and skipped (the scan resynchronises on the next valid frame)
and the segment is cut back to its last valid frame: the service never crash-loops on its log.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import struct
import sys
import uuid
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from isal.isal_zlib import crc32  # zlib's CRC-32, 15x faster: 0.07 ms for a 4 MB put

from firehose.durable import fsync_directory, replace_durably
from firehose.errors import WalError

log = logging.getLogger(__name__)

MAGIC = b"FHW1"
HEADER = struct.Struct("<4sIIQIQ")
HEADER_SIZE = HEADER.size  # 32
MAX_PAYLOAD = 64 * 1024 * 1024
SEGMENT_SUFFIX = ".wal"
WATERMARK_FILE = "delivered"
LOCK_FILE = "lock"
LOG_ID_FILE = "log-id"
READ_CHUNK = 8 * 1024 * 1024


@dataclass(slots=True)
class Frame:
    """The records of one put call, as read back from the log."""

    first_seq: int
    arrival_ms: int
    lengths: array
    data: memoryview

    @property
    def count(self) -> int:
        return len(self.lengths)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.lengths) - 1


@dataclass(slots=True)
class Segment:
    path: Path
    first_seq: int
    size: int = 0  # bytes of valid frames; for the active segment, bytes written
    synced_size: int = 0  # bytes known to be on disk (what readers may see)
    fd: int | None = None


@dataclass
class Corruption:
    """A stretch of a segment that held no valid frame."""

    path: Path
    offset: int
    length: int


@dataclass
class RecoveryReport:
    """What opening the log found: kept for the logs and for tests."""

    segments: int = 0
    frames: int = 0
    records_pending: int = 0
    bytes_pending: int = 0
    corruptions: list[Corruption] = field(default_factory=list)


def encode_frame(first_seq: int, arrival_ms: int, records: list[bytes]) -> bytes:
    """One frame for `records`; the only place the frame layout is written."""
    lengths = array("I", map(len, records))
    if sys.byteorder != "little":
        lengths.byteswap()
    # One join and one crc over the whole payload: per-record crc calls cost 3x as much.
    payload = b"".join([lengths.tobytes(), *records])
    tail = HEADER.pack(MAGIC, len(payload), 0, first_seq, len(records), arrival_ms)[12:]
    crc = crc32(payload, crc32(tail))
    return b"".join([struct.pack("<4sII", MAGIC, len(payload), crc), tail, payload])


def _parse_at(buf: memoryview, pos: int) -> tuple[Frame, int] | None:
    """The frame at `pos` and its end, or None if there is no complete valid frame there."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    magic, payload_len, crc, first_seq, count, arrival_ms = HEADER.unpack_from(buf, pos)
    if magic != MAGIC or payload_len > MAX_PAYLOAD or count * 4 > payload_len:
        return None
    end = pos + HEADER_SIZE + payload_len
    if end > len(buf):
        return None
    if crc32(buf[pos + HEADER_SIZE : end], crc32(buf[pos + 12 : pos + HEADER_SIZE])) != crc:
        return None
    body = pos + HEADER_SIZE
    lengths = array("I")
    lengths.frombytes(buf[body : body + count * 4])
    if sys.byteorder != "little":
        lengths.byteswap()
    data = buf[body + count * 4 : end]
    if sum(lengths) != len(data):
        return None
    return Frame(first_seq, arrival_ms, lengths, data), end


def _can_follow(frame: Frame, last_seq: int, gap: int) -> bool:
    """Whether `frame`, found `gap` bytes after the frame that held `last_seq`, can be the next.

    The frames of a segment hold consecutive seqs, and a lost frame took a header and 4 bytes per
    record. A frame found by resynchronising inside a record's data (a record may hold anything,
    even a whole frame) fails this unless its seqs happen to fit the gap.
    """
    lost_at_most = max(0, gap - HEADER_SIZE) // 4
    return last_seq < frame.first_seq <= last_seq + 1 + lost_at_most


def _resync(
    data: bytes,
    view: memoryview,
    pos: int,
    last_seq: int | None = None,
    gap_start: int = 0,
    *,
    more_follows: bool = False,
) -> int:
    """Offset of the next valid frame after `pos`, or len(data) if there is none.

    With `last_seq`, the frame must be able to follow it (`_can_follow`); `gap_start` is where the
    frame that held it ended, in `data`'s offsets. With `more_follows`, `data` is a chunk of a
    longer segment: also stop where a frame may start but runs past the chunk, to read on there.
    """
    start = pos
    while True:
        pos = data.find(MAGIC, pos + 1)
        if pos == -1:
            break
        parsed = _parse_at(view, pos)
        if parsed is not None:
            if last_seq is None or _can_follow(parsed[0], last_seq, pos - gap_start):
                return pos
        elif more_follows and _cut_frame_length(view, pos) is not None:
            return pos
    if more_follows:
        for tail in range(max(start + 1, len(data) - len(MAGIC) + 1), len(data)):
            if MAGIC.startswith(data[tail:]):
                return tail  # a magic cut by the chunk's end
    return len(data)


def _cut_frame_length(view: memoryview, pos: int) -> int | None:
    """The full length of a plausible frame that starts at `pos` but runs past the buffer."""
    if len(view) - pos < 8:
        return HEADER_SIZE
    magic, payload_len = struct.unpack_from("<4sI", view, pos)
    if (
        magic == MAGIC
        and payload_len <= MAX_PAYLOAD
        and pos + HEADER_SIZE + payload_len > len(view)
    ):
        return HEADER_SIZE + payload_len
    return None


def scan_frames(
    data: bytes, first_seq: int | None = None
) -> Iterator[tuple[Frame | None, int, int]]:
    """Yield (frame, start, end) for each valid frame and (None, start, end) for each bad stretch.

    A bad stretch ends where the next valid frame starts (resynchronisation on the magic), or at
    the end of `data`: at the end of a segment that is a torn tail. Given the segment's
    `first_seq`, a frame found by resynchronising must continue the seqs before it.
    """
    view = memoryview(data)
    last_seq = None if first_seq is None else first_seq - 1
    pos = 0
    while pos < len(data):
        parsed = _parse_at(view, pos)
        if parsed is not None:
            yield parsed[0], pos, parsed[1]
            if last_seq is not None:
                last_seq = parsed[0].last_seq
            pos = parsed[1]
            continue
        bad_end = _resync(data, view, pos, last_seq, pos)
        yield None, pos, bad_end
        pos = bad_end


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


class WriteAheadLog:
    """One stream's log. All methods but the `_sync_*` helpers run on the event loop's thread."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
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
        """Why the log refuses writes for good (a failed fsync), or None while it is sound."""
        return None if self._failed is None else f"fsync failed: {self._failed}"

    # -- opening --------------------------------------------------------------------------

    def open(self) -> RecoveryReport:
        """Read the watermark, drop delivered segments, check the rest. Blocking: use a thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._log_id = self._read_or_create_log_id()
        self.delivered_seq = self._read_watermark()
        self._delivered_wanted = self.delivered_seq
        found = []
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
            name = path.name.removesuffix(SEGMENT_SUFFIX)
            if not (name.isascii() and name.isdigit()):
                log.error("write-ahead log %s: not a segment name, file ignored", path)
                continue
            found.append(Segment(path, int(name)))
        found.sort(key=lambda segment: segment.first_seq)
        report = RecoveryReport()
        last_seq = self.delivered_seq
        for index, segment in enumerate(found):
            following = found[index + 1].first_seq if index + 1 < len(found) else None
            if following is not None and following - 1 <= self.delivered_seq:
                segment.path.unlink(missing_ok=True)
                continue
            seg_last = self._check_segment(segment, report)
            if seg_last is None and segment.size == 0:
                segment.path.unlink(missing_ok=True)
                continue
            if seg_last is not None:
                last_seq = max(last_seq, seg_last)
            segment.synced_size = segment.size
            self.segments.append(segment)
        self.next_seq = last_seq + 1
        report.segments = len(self.segments)
        for item in report.corruptions:
            log.error(
                "write-ahead log %s: %d corrupt or torn bytes at offset %d skipped",
                item.path,
                item.length,
                item.offset,
            )
        return report

    def _check_segment(self, segment: Segment, report: RecoveryReport) -> int | None:
        """Validate every frame, cut a bad tail off, count what is still to deliver."""
        data = segment.path.read_bytes()
        last_seq = None
        valid_end = 0
        for frame, start, end in scan_frames(data, segment.first_seq):
            if frame is None:
                report.corruptions.append(Corruption(segment.path, start, end - start))
                continue
            valid_end = end
            last_seq = frame.last_seq
            report.frames += 1
            pending = frame.lengths[max(0, self.delivered_seq + 1 - frame.first_seq) :]
            report.records_pending += len(pending)
            report.bytes_pending += sum(pending)
        if valid_end < len(data):
            with segment.path.open("r+b") as handle:
                handle.truncate(valid_end)
                os.fsync(handle.fileno())
        segment.size = valid_end
        return last_seq

    def _lock(self) -> None:
        """Refuse a second process on this log: it would deliver the same records again."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise WalError(
                f"{self.directory} is in use by another firehose process: "
                "give each instance its own --data-dir"
            ) from None
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
        frame = encode_frame(first_seq, arrival_ms, records)
        if len(frame) - HEADER_SIZE > MAX_PAYLOAD:
            # Recovery and readers take a longer frame for garbage: never acknowledge one.
            raise WalError(f"a put of {len(frame)} bytes is larger than a log frame may be")
        segment = self._segment_for(len(frame))
        try:
            view = memoryview(frame)
            while view:
                written = os.write(segment.fd, view)  # type: ignore[arg-type]
                view = view[written:]
        except OSError as exc:
            # The segment may now end in a partial frame: start a fresh one for what follows.
            self._retire_active()
            if segment.size == 0:
                self._drop_empty(segment)
            raise WalError(f"cannot write the write-ahead log: {exc}") from exc
        segment.size += len(frame)
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
        """Return once every append made before this call is on disk (group commit)."""
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
            except Exception as exc:
                # fsync failure leaves the page cache's state unknown: refuse further writes.
                self._failed = exc
                log.critical("write-ahead log %s: fsync failed: %s", self.directory, exc)
                for _, future in self._waiters:
                    if not future.done():
                        future.set_exception(WalError(f"fsync failed: {exc}"))
                self._waiters = []
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

    def _sync_files(self, fds: list[int], new_segment: bool) -> None:
        for fd in fds:
            os.fdatasync(fd)
        if new_segment:
            fsync_directory(self.directory)

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
        self._path: Path | None = None
        self._offset = 0  # where the next read in it starts
        self._last_seq = 0  # the last seq of its last valid frame read ...
        self._good_end = 0  # ... and where that frame ended: to judge frames found by resync

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
                self._first_seq, self._path, self._offset = first_seq, path, 0
                self._last_seq, self._good_end = first_seq - 1, 0
            while self._offset < size and budget > 0:
                data = self._pread(
                    path, self._offset, min(size - self._offset, max(budget, 1 << 20))
                )
                had = len(frames)
                consumed = self._parse_into(frames, data, path, size)
                if consumed == 0:
                    log.error("write-ahead log %s: shorter than its committed size", path)
                    return frames
                self._offset += consumed
                # Only what is returned counts: frames skipped by seq or corrupt bytes do not,
                # or a reader starting deep inside a segment would answer [] before caught up.
                budget -= sum(HEADER_SIZE + 4 * f.count + len(f.data) for f in frames[had:])
            if budget <= 0:
                break
        return frames

    def _parse_into(self, frames: list[Frame], data: bytes, path: Path, size: int) -> int:
        """Append the valid frames of `data` to `frames`; returns the bytes consumed."""
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            at = self._offset + pos
            parsed = _parse_at(view, pos)
            if parsed is None:
                full = _cut_frame_length(view, pos)
                if full is not None and at + full <= size:
                    if pos > 0:
                        return pos  # the rest next round, starting at this frame
                    parsed = _parse_at(memoryview(self._pread(path, at, full)), 0)
            if parsed is not None and (
                at == self._good_end or _can_follow(parsed[0], self._last_seq, at - self._good_end)
            ):
                frame, pos = parsed  # a frame read whole was read from `pos` == 0: same offsets
                if frame.last_seq > self.after_seq:
                    frames.append(frame)
                self._last_seq, self._good_end = frame.last_seq, self._offset + pos
                continue
            bad_end = _resync(
                data,
                view,
                pos,
                self._last_seq,
                self._good_end - self._offset,
                more_follows=self._offset + len(data) < size,
            )
            log.error(
                "write-ahead log %s: %d corrupt bytes at offset %d skipped",
                path,
                bad_end - pos,
                at,
            )
            pos = bad_end
        return pos

    @staticmethod
    def _pread(path: Path, offset: int, length: int) -> bytes:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)
