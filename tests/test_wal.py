"""The write-ahead log: durability, group commit, recovery from torn and corrupt bytes, tailing."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firehose.errors import LogKeyError, WalError
from firehose.frames import (
    HEADER_SIZE,
    KEY_ID_SIZE,
    MAGIC,
    SEALED_HEADER_SIZE,
    TAG_SIZE,
    Frame,
    SealingKey,
    encode_frame,
)
from firehose.wal import (
    READ_CHUNK,
    SEGMENT_SUFFIX,
    WATERMARK_FILE,
    RecoveryReport,
    WalReader,
    WriteAheadLog,
    scan_frames,
)

Record = tuple[int, int, bytes]  # seq, arrival ms, data
OpenLog = Callable[..., tuple[WriteAheadLog, RecoveryReport]]

REAL_FDATASYNC = os.fdatasync
REAL_WRITE = os.write
REAL_WRITEV = os.writev


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"


# The data keys of sealed frames, by id, across the logs of a test session.
KEYS: dict[bytes, AESGCM] = {}


def known_key(key_id: bytes) -> AESGCM:
    key = KEYS.get(key_id)
    if key is None:
        raise LogKeyError(f"no data key {key_id.hex()} (test)")
    return key


def new_sealing_key() -> SealingKey:
    key_id, key = os.urandom(KEY_ID_SIZE), AESGCM.generate_key(256)
    KEYS[key_id] = AESGCM(key)
    return SealingKey(key_id, key)


def overhead(sealed: bool) -> int:
    """What a frame takes in the log beyond its records and their lengths."""
    return SEALED_HEADER_SIZE + TAG_SIZE if sealed else HEADER_SIZE


def stored_size(records: list[bytes], sealed: bool) -> int:
    return overhead(sealed) + 4 * len(records) + sum(map(len, records))


@pytest.fixture(params=["plain", "sealed"])
def sealed(request: pytest.FixtureRequest) -> bool:
    """Every test of the log runs on plain frames and on sealed ones: both are found, checked,
    skipped and reported alike."""
    return bool(request.param == "sealed")


@pytest.fixture
async def open_log(log_dir: Path, sealed: bool) -> AsyncIterator[OpenLog]:
    """Opens a log (on `log_dir` unless told otherwise); every log opened is closed at the end.
    With `sealed`, each opening seals its frames with a data key of its own, as a run does."""
    opened: list[WriteAheadLog] = []

    def factory(
        directory: Path | None = None, **options: Any
    ) -> tuple[WriteAheadLog, RecoveryReport]:
        wal = WriteAheadLog(directory or log_dir, keys=known_key, **options)
        opened.append(wal)
        report = wal.open()
        if sealed:
            wal.sealing = new_sealing_key()
        return wal, report

    yield factory
    for wal in opened:
        await wal.close()


def frame_records(frame: Frame) -> list[Record]:
    records, offset = [], 0
    for index, length in enumerate(frame.lengths):
        data = bytes(frame.data[offset : offset + length])
        records.append((frame.first_seq + index, frame.arrival_ms, data))
        offset += length
    return records


async def read_frames(reader: WalReader, max_bytes: int = READ_CHUNK) -> list[Frame]:
    """Every frame the reader has, checking that no call repeats or goes back."""
    frames: list[Frame] = []
    for _ in range(100_000):
        before = reader.after_seq
        got = await reader.read(max_bytes)
        if not got:
            return frames
        for frame in got:
            assert frame.last_seq > before, "a frame already read came back"
            assert not frames or frame.first_seq > frames[-1].last_seq or frame.count == 0
            frames.append(frame)
        assert reader.after_seq == got[-1].last_seq
    raise AssertionError("the reader never caught up")


async def read_records(
    wal: WriteAheadLog, after_seq: int | None = None, max_bytes: int = READ_CHUNK
) -> list[Record]:
    """The records after `after_seq` (default: the delivered watermark), as a consumer sees them."""
    reader = wal.reader(after_seq)
    start = reader.after_seq
    frames = await read_frames(reader, max_bytes)
    return [record for frame in frames for record in frame_records(frame) if record[0] > start]


def segment_records(path: Path) -> list[Record]:
    """The records of one segment file, as a fresh scan of it sees them."""
    first_seq = int(path.name.removesuffix(SEGMENT_SUFFIX))
    frames = scan_frames(path.read_bytes(), first_seq, known_key)
    return [
        record for frame, _, _ in frames if frame is not None for record in frame_records(frame)
    ]


def open_records(directory: Path) -> list[Record]:
    """Every record of every segment file."""
    return [
        r for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")) for r in segment_records(path)
    ]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


async def put(wal: WriteAheadLog, records: list[bytes], arrival_ms: int) -> list[Record]:
    """Append and sync one frame; the records as they should read back."""
    first, last = wal.append(records, arrival_ms)
    assert last == first + len(records) - 1
    await wal.sync()
    return [(first + i, arrival_ms, data) for i, data in enumerate(records)]


def payloads(rng: random.Random, count: int, max_len: int = 120) -> list[bytes]:
    return [rng.randbytes(rng.randint(0, max_len)) for _ in range(count)]


# -- append, sync, reopen --------------------------------------------------------------------


async def test_round_trip_through_reopen(open_log: OpenLog, log_dir: Path) -> None:
    rng = random.Random(1)
    wal, report = open_log()
    assert report.corruptions == [] and wal.next_seq == 1
    expected: list[Record] = []
    for index in range(20):
        expected += await put(wal, payloads(rng, rng.randint(1, 6)), 1_700_000_000_000 + index)
    expected += await put(wal, [b"", b"", b"x"], 42)  # empty records are records too
    assert [seq for seq, _, _ in expected] == list(range(1, len(expected) + 1))
    assert await read_records(wal) == expected
    await wal.close()

    wal, report = open_log()
    assert report.corruptions == [] and report.problems == []
    assert report.frames == 21
    assert report.records_pending == len(expected)
    assert report.bytes_pending == sum(len(data) for _, _, data in expected)
    assert wal.next_seq == len(expected) + 1
    assert await read_records(wal) == expected
    expected += await put(wal, [b"after reopen"], 7)
    assert expected[-1][0] == len(expected)
    await wal.close()

    wal, _ = open_log()
    assert await read_records(wal) == expected
    assert open_records(log_dir) == expected


async def test_reopened_log_writes_a_new_segment(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log()
    await put(wal, [b"first run"], 1)
    await wal.close()
    [old] = segment_files(log_dir)
    old_bytes = old.read_bytes()

    wal, _ = open_log()
    assert segment_files(log_dir) == [old]  # opening alone creates nothing
    await put(wal, [b"second run"], 2)
    await wal.close()

    files = segment_files(log_dir)
    assert len(files) == 2 and files[0] == old
    assert old.read_bytes() == old_bytes, "an old segment was appended to"
    assert files[1].name == f"{2:020d}{SEGMENT_SUFFIX}"
    [(frame, _, _)] = list(scan_frames(files[1].read_bytes(), 2, known_key))
    assert frame is not None and frame_records(frame) == [(2, 2, b"second run")]


async def test_reopen_without_appends_leaves_no_empty_segment(
    open_log: OpenLog, log_dir: Path
) -> None:
    wal, _ = open_log()
    await put(wal, [b"a"], 1)
    await wal.close()
    for _ in range(3):
        wal, report = open_log()
        assert report.corruptions == [] and wal.next_seq == 2
        await wal.close()
    assert len(segment_files(log_dir)) == 1


async def test_leftover_file_with_the_next_segments_name_is_not_appended_to(
    open_log: OpenLog, log_dir: Path
) -> None:
    wal, _ = open_log()
    await put(wal, [b"a", b"b"], 1)
    await wal.close()
    # A crash can leave a segment that holds only a torn first frame: its name is the next seq.
    stale = log_dir / f"{3:020d}{SEGMENT_SUFFIX}"
    stale.write_bytes(encode_frame(3, 9, [b"never acknowledged"])[:20])

    wal, report = open_log()
    assert len(report.corruptions) == 1 and report.corruptions[0].path == stale
    await put(wal, [b"c"], 2)
    [(frame, _, _)] = list(scan_frames(stale.read_bytes(), 3, known_key))  # a clean segment
    assert frame is not None and frame_records(frame) == [(3, 2, b"c")]
    assert await read_records(wal, 0) == [(1, 1, b"a"), (2, 1, b"b"), (3, 2, b"c")]


async def test_file_that_is_not_a_segment_is_ignored(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log()
    await put(wal, [b"a"], 1)
    await wal.close()
    (log_dir / f"notes{SEGMENT_SUFFIX}").write_bytes(b"hello")
    wal, _ = open_log()
    assert await read_records(wal) == [(1, 1, b"a")]


# -- group commit ----------------------------------------------------------------------------


class SyncSpy:
    """Replaces os.fdatasync: records (inode, size) of each completed call, can hold calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[int, int]] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, fd: int) -> None:
        self.entered.set()
        assert self.gate.wait(10), "test never released the fdatasync"
        stat = os.fstat(fd)
        time.sleep(self.delay)
        REAL_FDATASYNC(fd)
        self.calls.append((stat.st_ino, stat.st_size))

    def covered(self, path: Path, end: int) -> bool:
        """Whether a completed fdatasync covered `path` up to `end`."""
        inode = path.stat().st_ino
        return any(ino == inode and size >= end for ino, size in self.calls)


async def test_group_commit_one_fdatasync_for_many_appends(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SyncSpy(delay=0.003)
    monkeypatch.setattr(os, "fdatasync", spy)
    wal, _ = open_log()
    rng = random.Random(2)
    delays = [rng.random() * 0.02 for _ in range(300)]

    async def producer(index: int) -> list[Record]:
        await asyncio.sleep(delays[index])
        first, _ = wal.append([b"record %d" % index], index)
        path = wal.segments[-1].path
        end = path.stat().st_size  # the append is on the file; no other task ran meanwhile
        await wal.sync()
        assert spy.covered(path, end), f"sync() of append {index} returned before its fdatasync"
        return [(first, index, b"record %d" % index)]

    results = await asyncio.gather(*(producer(index) for index in range(300)))
    assert sorted(seq for [(seq, _, _)] in results) == list(range(1, 301))
    assert 1 <= len(spy.calls) <= 60, f"{len(spy.calls)} fdatasync calls for 300 appends"
    expected = sorted(record for [record] in results)
    assert await read_records(wal) == expected


async def test_sync_waits_for_the_fdatasync(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SyncSpy()
    monkeypatch.setattr(os, "fdatasync", spy)
    wal, _ = open_log()
    spy.gate.clear()
    try:
        wal.append([b"a"], 1)
        waiter = asyncio.create_task(wal.sync())
        await asyncio.sleep(0.05)
        assert spy.entered.is_set()
        assert not waiter.done(), "sync() returned while its fdatasync was still running"
        # An append during the fdatasync is not covered by it: its sync waits for another.
        wal.append([b"b"], 2)
        second = asyncio.create_task(wal.sync())
        await asyncio.sleep(0.02)
        assert not second.done()
    finally:
        spy.gate.set()
    await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(second, 5)
    assert len(spy.calls) == 2
    path = wal.segments[-1].path
    assert spy.covered(path, path.stat().st_size)


async def test_sync_with_nothing_appended_returns_at_once(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SyncSpy()
    monkeypatch.setattr(os, "fdatasync", spy)
    wal, _ = open_log()
    await wal.sync()
    await put(wal, [b"a"], 1)
    await wal.sync()
    assert len(spy.calls) == 1


async def test_rotation_while_a_sync_runs_still_syncs_the_old_segment(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    spy = SyncSpy()
    monkeypatch.setattr(os, "fdatasync", spy)
    wal, _ = open_log(segment_bytes=200)
    spy.gate.clear()
    try:
        wal.append([b"a" * 60], 1)
        first_segment = wal.segments[-1].path
        first_end = first_segment.stat().st_size
        waiter = asyncio.create_task(wal.sync())
        for _ in range(500):
            if spy.entered.is_set():
                break
            await asyncio.sleep(0.001)
        assert spy.entered.is_set()
        wal.append([b"b" * 150], 2)  # does not fit: the log moves to a new segment
        assert len(wal.segments) == 2
    finally:
        spy.gate.set()
    await asyncio.wait_for(waiter, 5)
    assert spy.covered(first_segment, first_end), "the old segment's fdatasync missed it"
    await wal.sync()
    assert await read_records(wal) == [(1, 1, b"a" * 60), (2, 2, b"b" * 150)]
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == []
    assert len(segment_files(log_dir)) == 2


async def test_fdatasync_failure_fails_waiters_and_later_appends(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal, _ = open_log()
    await put(wal, [b"durable"], 1)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)

    async def producer(index: int) -> None:
        wal.append([b"x%d" % index], index)
        await wal.sync()

    assert wal.failure is None
    results = await asyncio.gather(*(producer(i) for i in range(10)), return_exceptions=True)
    assert all(isinstance(result, WalError) for result in results), results
    assert wal.failure is not None and "Input/output error" in wal.failure
    with pytest.raises(WalError):
        wal.append([b"after the failure"], 11)
    # A second fdatasync would report success although the pages may be lost (fsyncgate):
    # a sync after the failure must fail, not retry.
    monkeypatch.setattr(os, "fdatasync", REAL_FDATASYNC)
    with pytest.raises(WalError):
        await wal.sync()
    with pytest.raises(WalError):
        wal.append([b"still failed"], 12)


async def test_fdatasync_failure_after_append_before_sync(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal, _ = open_log()
    calls = 0

    def failing_once(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EIO, "Input/output error")
        REAL_FDATASYNC(fd)

    monkeypatch.setattr(os, "fdatasync", failing_once)
    wal.append([b"a"], 1)
    wal.append([b"b"], 2)
    first = asyncio.create_task(wal.sync())
    with pytest.raises(WalError):
        await first
    # "b" was appended before the failure but its producer asks only now: it is not durable.
    with pytest.raises(WalError):
        await wal.sync()
    assert calls == 1


async def test_put_larger_than_a_frame_may_be_is_refused(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, sealed: bool
) -> None:
    monkeypatch.setattr("firehose.wal.MAX_PAYLOAD", 1000)
    wal, _ = open_log()
    tag = TAG_SIZE if sealed else 0
    expected = await put(wal, [b"a" * (990 - tag)], 1)  # 4 bytes of length + 990: fits
    with pytest.raises(WalError):
        wal.append([b"b" * 500, b"c" * 500], 2)
    assert wal.next_seq == 2
    expected += await put(wal, [b"d"], 3)
    assert await read_records(wal) == expected
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == []
    assert await read_records(wal) == expected


# -- a failed write --------------------------------------------------------------------------


def partial_write_then_enospc(partial: int) -> Callable[[int, bytes | memoryview], int]:
    """An os.write that writes `partial` bytes of a segment's next frame, then fails."""
    calls = 0

    def write(fd: int, data: bytes | memoryview) -> int:
        nonlocal calls
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(SEGMENT_SUFFIX):
            return REAL_WRITE(fd, data)
        calls += 1
        if calls == 1 and partial:
            return REAL_WRITE(fd, bytes(data[:partial]))
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def writev_through(write: Callable[[int, bytes | memoryview], int]) -> Callable[..., int]:
    """An os.writev that hands its buffers, joined, to `write`: one write call per writev."""

    def writev(fd: int, buffers: Sequence[bytes]) -> int:
        return write(fd, b"".join(buffers))

    return writev


@pytest.mark.parametrize("partial", [0, 20])
@pytest.mark.parametrize("earlier_frames", [0, 2], ids=["first-frame", "later-frame"])
async def test_failed_write_is_not_acknowledged_and_the_log_goes_on(
    open_log: OpenLog,
    monkeypatch: pytest.MonkeyPatch,
    log_dir: Path,
    earlier_frames: int,
    partial: int,
) -> None:
    wal, _ = open_log()
    expected: list[Record] = []
    for index in range(earlier_frames):
        expected += await put(wal, [b"before %d" % index], index)
    failing = partial_write_then_enospc(partial)
    monkeypatch.setattr(os, "write", failing)
    monkeypatch.setattr(os, "writev", writev_through(failing))
    seq_before = wal.next_seq
    with pytest.raises(WalError):
        wal.append([b"lost" * 10], 99)
    assert wal.next_seq == seq_before
    monkeypatch.setattr(os, "write", REAL_WRITE)
    monkeypatch.setattr(os, "writev", REAL_WRITEV)

    expected += await put(wal, [b"after the failure"], 100)
    expected += await put(wal, [b"and more", b""], 101)
    assert await read_records(wal) == expected
    await wal.close()
    wal, _ = open_log()
    assert await read_records(wal) == expected
    assert open_records(log_dir) == expected


@pytest.mark.parametrize("short", [1, 31, 32, 33, 100])
async def test_a_short_write_is_completed(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, short: int
) -> None:
    def short_writev(fd: int, buffers: Sequence[bytes]) -> int:
        return REAL_WRITE(fd, b"".join(buffers)[:short])

    wal, _ = open_log()
    expected = await put(wal, [b"first"], 1)
    monkeypatch.setattr(os, "writev", short_writev)
    expected += await put(wal, [b"x" * 50, b"y" * 60], 2)
    monkeypatch.setattr(os, "writev", REAL_WRITEV)
    expected += await put(wal, [b"last"], 3)
    assert await read_records(wal) == expected
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == []
    assert await read_records(wal) == expected


# -- segments and the reader -----------------------------------------------------------------


async def test_segments_rotate_at_segment_bytes(open_log: OpenLog, log_dir: Path) -> None:
    rng = random.Random(3)
    limit = 1000
    wal, _ = open_log(segment_bytes=limit)
    expected: list[Record] = []
    for index in range(60):
        expected += await put(wal, payloads(rng, rng.randint(1, 4), 80), index)
    expected += await put(wal, [b"z" * 3000], 60)  # alone larger than a segment
    expected += await put(wal, [b"after the big one"], 61)

    files = segment_files(log_dir)
    assert len(files) >= 8
    for path in files:
        data = path.read_bytes()
        frames = [frame for frame, _, _ in scan_frames(data, None, known_key) if frame is not None]
        assert frames and sum(f.count for f in frames) == len(segment_records(path))
        # Named after the first seq it holds; over the limit only when one frame is.
        assert path.name == f"{frames[0].first_seq:020d}{SEGMENT_SUFFIX}"
        assert len(data) <= limit or len(frames) == 1
    assert await read_records(wal) == expected
    assert await read_records(wal, 0, max_bytes=1) == expected
    await wal.close()
    wal, report = open_log(segment_bytes=limit)
    assert report.segments == len(files) and report.corruptions == []
    assert await read_records(wal) == expected


async def test_reader_tails_only_committed_frames(open_log: OpenLog) -> None:
    wal, _ = open_log(segment_bytes=300)
    reader = wal.reader()
    assert await reader.read() == []
    wal.append([b"a" * 100], 1)
    assert await reader.read() == [], "the reader saw a frame before it was synced"
    await wal.sync()
    [frame] = await reader.read()
    assert frame_records(frame) == [(1, 1, b"a" * 100)]
    assert await reader.read() == []

    wal.append([b"b" * 100], 2)
    wal.append([b"c" * 100], 3)  # rotates: the new segment is not durable either
    assert await reader.read() == []
    await wal.sync()
    frames = await read_frames(reader)
    assert [record for f in frames for record in frame_records(f)] == [
        (2, 2, b"b" * 100),
        (3, 3, b"c" * 100),
    ]
    assert reader.after_seq == 3


async def test_reader_after_seq_inside_a_frame(open_log: OpenLog) -> None:
    wal, _ = open_log(segment_bytes=400)
    expected: list[Record] = []
    for index in range(12):
        expected += await put(wal, [b"%d-%d" % (index, i) * 5 for i in range(5)], index)
    for after_seq in [0, 1, 2, 3, 7, 12, 29, 30, 31, 58, 59, 60, 100]:
        for max_bytes in [1, 100, READ_CHUNK]:
            reader = wal.reader(after_seq)
            frames = await read_frames(reader, max_bytes)
            if after_seq >= len(expected):
                assert frames == []
                continue
            # Read.read's contract: the first frame holds after_seq + 1 and may start before it.
            assert frames[0].first_seq <= after_seq + 1 <= frames[0].last_seq
            assert all(frame.last_seq > after_seq for frame in frames)
            records = [r for f in frames for r in frame_records(f) if r[0] > after_seq]
            assert records == expected[after_seq:]


async def test_reader_returns_a_frame_larger_than_its_budget_whole(open_log: OpenLog) -> None:
    wal, _ = open_log()
    big = random.Random(4).randbytes(3 * 1024 * 1024 + 17)  # past any read chunk
    expected = await put(wal, [b"small"], 1)
    expected += await put(wal, [big, b"tail"], 2)
    expected += await put(wal, [b"end"], 3)
    reader = wal.reader()
    first = await reader.read(10)
    assert [f.count for f in first][:1] == [1]
    frames = first + await read_frames(reader, 10)
    assert [record for f in frames for record in frame_records(f)] == expected

    reader = wal.reader(1)  # starting at the big frame itself
    [frame, *_] = await reader.read(1)
    assert frame_records(frame) == expected[1:3]


async def test_reader_with_tiny_budgets_makes_progress(open_log: OpenLog) -> None:
    rng = random.Random(5)
    wal, _ = open_log(segment_bytes=2000)
    expected: list[Record] = []
    for index in range(50):
        expected += await put(wal, payloads(rng, rng.randint(0, 5), 200), index)
    reader = wal.reader()
    calls = 0
    seen: list[Record] = []
    while frames := await reader.read(1):
        calls += 1
        seen += [r for f in frames for r in frame_records(f)]
    assert seen == expected
    assert calls >= 1


async def test_reader_starting_deep_in_a_segment_answers_at_once(open_log: OpenLog) -> None:
    # After a restart the reader starts at the watermark, megabytes into a segment: skipping the
    # delivered frames must not use up its budget, or it answers [] and delivery stalls.
    wal, _ = open_log()
    for index in range(30):
        await put(wal, [bytes([index]) * 100_000], index)
    expected = await put(wal, [b"not delivered yet"], 30)
    reader = wal.reader(30)
    frames = await reader.read(1)
    assert [r for f in frames for r in frame_records(f)] == expected


async def test_reader_is_not_thrown_back_by_a_rotation_during_a_sync(open_log: OpenLog) -> None:
    # Old frames past the reader's minimum read size: reading them again would use its budget.
    wal, _ = open_log(segment_bytes=4 * 1024 * 1024)
    old = [await put(wal, [bytes([i]) * 100_000], i) for i in range(25)]
    reader = wal.reader()
    assert len(await read_frames(reader)) == 25

    wal.append([b"x" * 100_000], 100)  # still fits the first segment
    wal.append([b"y" * 2_000_000], 101)  # does not: a new segment; neither is synced
    assert await reader.read(1) == []
    await wal.sync()
    frames = await reader.read(1)
    assert frames, "committed frames not returned: the reader went back to the old segment"
    frames += await read_frames(reader, 1)
    records = [r for f in frames for r in frame_records(f)]
    assert records == [(26, 100, b"x" * 100_000), (27, 101, b"y" * 2_000_000)]
    assert len(old) == 25


async def test_reader_can_follow_appends_across_many_segments(open_log: OpenLog) -> None:
    rng = random.Random(6)
    wal, _ = open_log(segment_bytes=500)
    reader = wal.reader()
    expected: list[Record] = []
    seen: list[Record] = []
    for index in range(80):
        for _ in range(rng.randint(0, 3)):
            first, _ = wal.append(data := payloads(rng, 2, 100), index)
            expected += [(first + i, index, d) for i, d in enumerate(data)]
        if rng.random() < 0.7:
            await wal.sync()
        frames = await reader.read(rng.choice([1, 300, READ_CHUNK]))
        seen += [r for f in frames for r in frame_records(f)]
        assert seen == expected[: len(seen)]
    await wal.sync()
    seen += [r for f in await read_frames(reader) for r in frame_records(f)]
    assert seen == expected


# -- the delivered watermark -----------------------------------------------------------------


async def test_mark_delivered_writes_the_watermark_atomically_and_deletes_old_segments(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    wal, _ = open_log(segment_bytes=200)
    expected: list[Record] = []
    for index in range(10):
        expected += await put(wal, [b"%d" % index * 40, b"%d" % index * 40], index)
    files = segment_files(log_dir)
    assert len(files) == 10  # one frame per segment: seqs 1-2, 3-4, ...

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy_replace(src: str | Path, dst: str | Path) -> None:
        replaced.append((Path(src).name, Path(dst).name))
        assert Path(src).read_text() == str(wanted)  # complete before it takes the name
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    wanted = 5
    await wal.mark_delivered(wanted)  # inside the third segment's frame (seqs 5-6)
    assert replaced and replaced[-1][1] == WATERMARK_FILE
    assert (log_dir / WATERMARK_FILE).read_text() == "5"
    assert wal.delivered_seq == 5
    assert not (log_dir / (WATERMARK_FILE + ".tmp")).exists()
    assert segment_files(log_dir) == files[2:]
    assert await read_records(wal) == expected[5:]

    wanted = 19
    await wal.mark_delivered(19)
    assert segment_files(log_dir) == files[9:]
    await wal.mark_delivered(10)  # going back is ignored
    assert (log_dir / WATERMARK_FILE).read_text() == "19" and wal.delivered_seq == 19
    wanted = 20
    await wal.mark_delivered(20)  # everything: the active segment stays
    assert segment_files(log_dir) == files[9:]
    assert [s.path for s in wal.segments] == files[9:]
    expected += await put(wal, [b"new"], 10)
    assert await read_records(wal) == expected[20:]


async def test_mark_delivered_keeps_the_active_segment(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log()
    await put(wal, [b"a", b"b"], 1)
    await wal.mark_delivered(2)
    assert len(segment_files(log_dir)) == 1
    expected = await put(wal, [b"c"], 2)
    assert await read_records(wal) == expected
    await wal.close()
    wal, report = open_log()
    assert report.records_pending == 1 and wal.next_seq == 4
    assert await read_records(wal) == expected


async def test_overlapping_mark_delivered_never_moves_the_watermark_back(
    open_log: OpenLog, log_dir: Path
) -> None:
    wal, _ = open_log()
    await put(wal, [b"r"] * 30, 1)
    await asyncio.gather(wal.mark_delivered(20), wal.mark_delivered(10))
    assert wal.delivered_seq == 20
    assert (log_dir / WATERMARK_FILE).read_text() == "20"


async def test_failed_watermark_write_raises_wal_error_and_can_be_retried(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    wal, _ = open_log()
    await put(wal, [b"a", b"b"], 1)
    real_replace = os.replace

    def failing(src: str | Path, dst: str | Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(WalError):
        await wal.mark_delivered(2)
    assert wal.delivered_seq == 0
    monkeypatch.setattr(os, "replace", real_replace)
    await wal.mark_delivered(2)
    assert wal.delivered_seq == 2 and (log_dir / WATERMARK_FILE).read_text() == "2"


async def test_reopen_skips_delivered_records(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log(segment_bytes=300)
    expected: list[Record] = []
    for index in range(12):
        expected += await put(wal, [b"%02d-%d" % (index, i) * 10 for i in range(3)], index)
    await wal.mark_delivered(17)  # mid-frame: frame 6 holds 16-18
    await wal.close()

    wal, report = open_log(segment_bytes=300)
    assert wal.delivered_seq == 17
    assert report.records_pending == len(expected) - 17
    assert report.bytes_pending == sum(len(d) for _, _, d in expected[17:])
    assert await read_records(wal) == expected[17:]
    assert wal.reader().after_seq == 17
    assert wal.next_seq == len(expected) + 1
    # No segment wholly below the watermark is left on disk.
    for path in segment_files(log_dir):
        assert segment_records(path)[-1][0] > 17


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"1",
        b"\n",
        b"12abc",
        b"-5",
        b"1_0",
        b"\xff\xfe\x00\x80garbage",
        b"\x00" * 8,
        b"\xd9\xa1",
    ],
    ids=["empty", "torn", "newline", "junk", "negative", "underscore", "binary", "zeros", "arabic"],
)
async def test_torn_or_garbage_watermark_is_ignored(
    open_log: OpenLog, log_dir: Path, content: bytes
) -> None:
    wal, _ = open_log(segment_bytes=100)
    expected: list[Record] = []
    for index in range(5):
        expected += await put(wal, [b"%d" % index * 50], index)
    await wal.mark_delivered(3)
    await wal.close()
    files = segment_files(log_dir)
    (log_dir / WATERMARK_FILE).write_bytes(content)

    wal, report = open_log(segment_bytes=100)
    # Torn to a shorter number, it is an older watermark: redelivery, never loss.
    assert wal.delivered_seq == (1 if content == b"1" else 0)
    assert segment_files(log_dir) == files
    assert report.records_pending == 2  # what the segments kept
    assert await read_records(wal) == expected[3:]
    assert wal.next_seq == 6
    await wal.mark_delivered(4)
    assert (log_dir / WATERMARK_FILE).read_text() == "4"


async def test_leftover_watermark_temp_file_is_harmless(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log()
    expected = await put(wal, [b"a", b"b"], 1)
    await wal.mark_delivered(1)
    await wal.close()
    (log_dir / (WATERMARK_FILE + ".tmp")).write_bytes(b"99")
    wal, _ = open_log()
    assert wal.delivered_seq == 1
    assert await read_records(wal) == expected[1:]
    await wal.mark_delivered(2)
    assert (log_dir / WATERMARK_FILE).read_text() == "2"


# -- recovery: torn tails and corruption -----------------------------------------------------


async def write_frames(
    open_log: OpenLog, frames: list[list[bytes]], **options: int
) -> tuple[list[list[Record]], list[int]]:
    """Write one frame per list in a fresh log and close it: (records per frame, frame offsets)."""
    wal, _ = open_log(**options)
    written, offsets = [], []
    for index, records in enumerate(frames):
        offsets.append(wal.segments[-1].size if wal.segments else 0)
        written.append(await put(wal, records, 1000 + index))
    await wal.close()
    return written, offsets


LAST_FRAME = [b"hello", b"", b"0123456789" * 4]  # 32 header + 12 lengths + 45 data = 89 bytes


@pytest.mark.parametrize(
    "keep",
    [1, 3, 4, 6, 8, 11, 12, 16, 20, 27, 31, 32, 33, 36, 43, 44, 45, 49, 50, 70, 88],
)
async def test_torn_tail_is_cut_and_reported(
    open_log: OpenLog, log_dir: Path, keep: int, sealed: bool
) -> None:
    written, offsets = await write_frames(
        open_log, [[b"a" * 10], [b"b" * 20, b"c"], [b"FHW1" * 3], LAST_FRAME]
    )
    [path] = segment_files(log_dir)
    assert path.stat().st_size == offsets[3] + stored_size(LAST_FRAME, sealed)
    with path.open("r+b") as handle:
        handle.truncate(offsets[3] + keep)

    wal, report = open_log()
    assert [(c.path, c.offset, c.length) for c in report.corruptions] == [(path, offsets[3], keep)]
    # At the end of the log, a torn frame is most likely a write that was never acknowledged.
    [problem] = report.problems
    assert (problem.kind, problem.records_affected) == ("corrupt", None)
    assert report.records_lost == 0
    assert report.frames == 3
    assert path.stat().st_size == offsets[3], "the torn tail was not cut off"
    kept = [record for frame in written[:3] for record in frame]
    assert await read_records(wal) == kept
    assert wal.next_seq == written[3][0][0]  # the torn frame was never acknowledged

    kept += await put(wal, [b"after", b"the crash"], 5)
    assert await read_records(wal) == kept
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == []
    assert await read_records(wal) == kept


async def test_torn_tail_in_an_older_segment(
    open_log: OpenLog, log_dir: Path, sealed: bool
) -> None:
    segment_bytes = 2 * stored_size([b"a" * 50], sealed) + 28  # two frames each
    written, _ = await write_frames(
        open_log, [[b"a" * 50], [b"b" * 50], [b"c" * 50], [b"d" * 50]], segment_bytes=segment_bytes
    )
    files = segment_files(log_dir)
    assert len(files) == 2
    with files[0].open("r+b") as handle:
        handle.truncate(files[0].stat().st_size - 7)  # the second frame of the first segment
    wal, report = open_log(segment_bytes=segment_bytes)
    assert len(report.corruptions) == 1 and report.corruptions[0].path == files[0]
    # The next segment's name says which seqs the torn frame held: it was acknowledged.
    [problem] = report.problems
    assert (problem.kind, problem.records_affected) == ("corrupt", 1)
    assert "records 2-2 lost" in problem.message and str(files[0]) in problem.message
    kept = written[0] + written[2] + written[3]
    assert await read_records(wal) == kept
    assert await read_records(wal, 0, max_bytes=1) == kept
    assert wal.next_seq == 5


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0xA5]))


FRAMES = [[b"frame %d record %d " % (k, i) * (k + 1) for i in range(3)] for k in range(6)]


@pytest.mark.parametrize(
    "where",
    [0, 2, 5, 7, 9, 12, 14, 20, 25, 28, 31, 32, 35, 44, -1],
    ids=lambda where: {0: "magic", 5: "length", 9: "crc", 14: "seq", 28: "arrival"}.get(
        where, str(where)
    ),
)
@pytest.mark.parametrize("k", [0, 2, 4, 5])
async def test_corrupt_frame_is_skipped_and_the_rest_kept(
    open_log: OpenLog, log_dir: Path, k: int, where: int
) -> None:
    written, offsets = await write_frames(open_log, FRAMES)
    [path] = segment_files(log_dir)
    size = path.stat().st_size
    frame_end = offsets[k + 1] if k + 1 < len(offsets) else size
    flip(path, frame_end - 1 if where == -1 else offsets[k] + where)

    wal, report = open_log()
    assert len(report.corruptions) == 1
    assert report.corruptions[0].offset == offsets[k]
    assert report.corruptions[0].length == frame_end - offsets[k]
    [problem] = report.problems
    assert problem.kind == "corrupt"
    assert problem.records_affected == (None if k == len(FRAMES) - 1 else len(FRAMES[k]))
    assert report.frames == len(FRAMES) - 1
    kept = [record for index, frame in enumerate(written) for record in frame if index != k]
    assert await read_records(wal) == kept
    assert await read_records(wal, 0, max_bytes=1) == kept
    last_kept = kept[-1][0]
    assert wal.next_seq == last_kept + 1 if k == len(FRAMES) - 1 else written[-1][-1][0] + 1

    kept += await put(wal, [b"new"], 9)
    assert await read_records(wal) == kept
    await wal.close()
    wal, _ = open_log()
    assert await read_records(wal) == kept


async def test_two_corrupt_frames(open_log: OpenLog, log_dir: Path) -> None:
    written, offsets = await write_frames(open_log, FRAMES)
    [path] = segment_files(log_dir)
    flip(path, offsets[1] + 40)
    flip(path, offsets[2] + 3)
    flip(path, offsets[4] + 10)
    wal, report = open_log()
    assert [c.offset for c in report.corruptions] == [offsets[1], offsets[4]]
    kept = written[0] + written[3] + written[5]
    assert await read_records(wal) == kept
    assert await read_records(wal, 0, max_bytes=1) == kept


@pytest.mark.parametrize("seed", range(5))
async def test_garbage_after_the_last_frame(open_log: OpenLog, log_dir: Path, seed: int) -> None:
    written, _ = await write_frames(open_log, FRAMES[:3])
    [path] = segment_files(log_dir)
    valid_size = path.stat().st_size
    rng = random.Random(seed)
    garbage = rng.randbytes(rng.randint(1, 3000))
    cut = rng.randint(0, len(garbage))
    # Garbage that looks like the start of frames, and a whole old frame, in the middle of it.
    garbage = (
        garbage[:cut]
        + MAGIC
        + struct.pack("<I", rng.randint(0, 2000))
        + encode_frame(1, 0, [b"stale"])
        + garbage[cut:]
    )
    with path.open("ab") as handle:
        handle.write(garbage)

    wal, report = open_log()
    assert len(report.corruptions) == 1
    assert (report.corruptions[0].offset, report.corruptions[0].length) == (
        valid_size,
        len(garbage),
    )
    assert path.stat().st_size == valid_size
    kept = [record for frame in written for record in frame]
    assert await read_records(wal) == kept
    assert wal.next_seq == kept[-1][0] + 1
    kept += await put(wal, [b"more"], 1)
    assert await read_records(wal) == kept


async def test_empty_segment_file(open_log: OpenLog, log_dir: Path) -> None:
    written, _ = await write_frames(open_log, FRAMES[:2])
    empty = log_dir / f"{7:020d}{SEGMENT_SUFFIX}"
    empty.write_bytes(b"")
    wal, report = open_log()
    assert report.corruptions == []
    assert not empty.exists()
    kept = written[0] + written[1]
    assert await read_records(wal) == kept
    kept += await put(wal, [b"x"], 1)
    assert await read_records(wal) == kept


async def test_only_an_empty_segment_file(open_log: OpenLog, log_dir: Path) -> None:
    log_dir.mkdir()
    (log_dir / f"{1:020d}{SEGMENT_SUFFIX}").write_bytes(b"")
    wal, report = open_log()
    assert report.corruptions == [] and wal.next_seq == 1
    assert await read_records(wal) == []
    assert await put(wal, [b"x"], 1) == [(1, 1, b"x")]
    assert await read_records(wal) == [(1, 1, b"x")]


@pytest.mark.parametrize("seed", range(5))
async def test_segment_of_pure_garbage(open_log: OpenLog, log_dir: Path, seed: int) -> None:
    written, _ = await write_frames(open_log, FRAMES[:2])
    rng = random.Random(seed)
    garbage = rng.randbytes(rng.randint(1, 5000))
    garbage = garbage[:100] + MAGIC + garbage[100:]
    bad = log_dir / f"{7:020d}{SEGMENT_SUFFIX}"
    bad.write_bytes(garbage)
    wal, report = open_log()
    assert [(c.path, c.offset, c.length) for c in report.corruptions] == [(bad, 0, len(garbage))]
    kept = written[0] + written[1]
    assert await read_records(wal) == kept
    assert wal.next_seq == 7
    kept += await put(wal, [b"x"], 1)
    assert await read_records(wal) == kept
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == []
    assert await read_records(wal) == kept


@pytest.mark.parametrize("seed", range(3))
async def test_random_damage_never_raises(open_log: OpenLog, log_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    written, _ = await write_frames(
        open_log, [payloads(rng, rng.randint(1, 4), 300) for _ in range(40)], segment_bytes=3000
    )
    all_records = {record for frame in written for record in frame}
    for path in segment_files(log_dir):
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(0, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            data = data[: rng.randrange(len(data) + 1)]
        path.write_bytes(bytes(data))
    wal, _ = open_log(segment_bytes=3000)
    records = await read_records(wal, 0, max_bytes=rng.choice([1, 1000, READ_CHUNK]))
    assert set(records) <= all_records, "a record came back that was never written"
    assert [seq for seq, _, _ in records] == sorted({seq for seq, _, _ in records})
    assert await put(wal, [b"x"], 1) == [(wal.next_seq - 1, 1, b"x")]


# -- records that look like frames -----------------------------------------------------------


def tricky_records() -> list[bytes]:
    inner = encode_frame(1, 5, [b"inner"])
    return [
        MAGIC,
        MAGIC * 100,
        inner,
        encode_frame(2, 0, [b"a", b"b", inner]) + MAGIC,
        b"x" * 7 + inner + b"y" * 3,
        inner[:HEADER_SIZE],
        b"",
    ]


async def test_records_holding_frames_read_back_as_data(open_log: OpenLog, log_dir: Path) -> None:
    wal, _ = open_log(segment_bytes=600)
    expected: list[Record] = []
    for index, record in enumerate(tricky_records()):
        expected += await put(wal, [record], index)
        expected += await put(wal, [b"plain", record, record], index)
    for max_bytes in [1, 7, 33, 100, READ_CHUNK]:
        assert await read_records(wal, 0, max_bytes) == expected
    await wal.close()
    wal, report = open_log(segment_bytes=600)
    assert report.corruptions == []
    assert report.frames == 2 * len(tricky_records())
    assert report.records_pending == len(expected)
    assert wal.next_seq == len(expected) + 1
    for max_bytes in [1, 7, 33, 100, READ_CHUNK]:
        assert await read_records(wal, 0, max_bytes) == expected


async def test_large_record_holding_frames_across_read_chunks(open_log: OpenLog) -> None:
    # Frames inside the data at many offsets, so that read chunks end in the middle of them.
    inner = encode_frame(1, 5, [b"inner"] * 3)
    step = 100_003
    big = bytearray(random.Random(7).randbytes(3 * 1024 * 1024))
    for at in range(0, len(big) - len(inner), step):
        big[at : at + len(inner)] = inner
    wal, _ = open_log()
    expected = await put(wal, [b"before"], 1)
    expected += await put(wal, [bytes(big)], 2)
    expected += await put(wal, [bytes(big[:1_500_000]), b"z"], 3)
    for max_bytes in [1, 500_000, READ_CHUNK]:
        assert await read_records(wal, 0, max_bytes) == expected
    await wal.close()
    wal, report = open_log()
    assert report.corruptions == [] and report.frames == 3
    assert await read_records(wal, 0, 1) == expected


@pytest.mark.parametrize("inner_seq", [1, 2, 1_000_000])
async def test_torn_frame_holding_a_frame_is_not_resurrected(
    open_log: OpenLog, log_dir: Path, inner_seq: int
) -> None:
    inner = encode_frame(inner_seq, 5, [b"not a record"])
    written, offsets = await write_frames(
        open_log, [[b"a"], [b"b"], [b"c" * 50 + inner + b"d" * 50]]
    )
    [path] = segment_files(log_dir)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 10)  # torn after the inner frame
    wal, report = open_log()
    assert len(report.corruptions) == 1
    assert path.stat().st_size == offsets[2]
    assert await read_records(wal, 0) == written[0] + written[1]
    assert wal.next_seq == 3


# Only seqs that cannot follow: a frame in the data holding the very seqs lost is ambiguous.
@pytest.mark.parametrize("inner_seq", [1, 2, 1_000_000])
async def test_corrupt_frame_holding_a_frame_is_not_resurrected(
    open_log: OpenLog, log_dir: Path, inner_seq: int
) -> None:
    inner = encode_frame(inner_seq, 5, [b"not a record"])
    written, offsets = await write_frames(
        open_log, [[b"a"], [b"b"], [b"c" * 500 + inner + b"d" * 500], [b"e"]]
    )
    [path] = segment_files(log_dir)
    flip(path, offsets[2] + HEADER_SIZE + 20)
    wal, report = open_log()
    assert len(report.corruptions) == 1
    kept = written[0] + written[1] + written[3]
    for max_bytes in [1, READ_CHUNK]:
        assert await read_records(wal, 0, max_bytes) == kept
    assert wal.next_seq == 5


# -- the reader resynchronising across its read chunks ---------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize("next_start", [MIB - 2, MIB - 4, MIB - 6, MIB - 20, MIB - 4000, MIB + 5])
async def test_reader_resyncs_onto_a_frame_cut_by_its_read_chunk(
    open_log: OpenLog, log_dir: Path, next_start: int, sealed: bool
) -> None:
    # Frames 0 and 1, a corrupt frame 2, then frame 3 starting near the reader's 1 MiB chunk end.
    each = overhead(sealed) + 4
    sizes = [300_000, 300_000]
    sizes.append(next_start - 2 * (300_000 + each) - each)
    sizes.append(400_000)
    written, offsets = await write_frames(
        open_log, [[bytes([65 + i]) * size] for i, size in enumerate(sizes)]
    )
    assert offsets[3] == next_start
    [path] = segment_files(log_dir)
    flip(path, offsets[2] + HEADER_SIZE + 100)
    wal, report = open_log()
    assert len(report.corruptions) == 1
    kept = written[0] + written[1] + written[3]
    for max_bytes in [1, 100, READ_CHUNK]:
        assert await read_records(wal, 0, max_bytes) == kept, max_bytes


# -- recovery reads a chunk at a time --------------------------------------------------------


async def damaged_log(open_log: OpenLog, log_dir: Path, seed: int) -> list[Record]:
    """A log of frames of every size, tricky records among them, then damaged: what was written."""
    rng = random.Random(seed)
    wal, _ = open_log(segment_bytes=200_000)
    written: list[Record] = []
    for index in range(120):
        records = payloads(rng, rng.randint(0, 4), rng.choice([50, 500, 5000]))
        if rng.random() < 0.2:
            records.append(rng.choice(tricky_records()))
        if rng.random() < 0.05:
            records.append(rng.randbytes(70_000))  # larger than any small chunk
        written += await put(wal, records, index)
    await wal.close()
    for path in segment_files(log_dir):
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(0, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            data = data[: rng.randrange(len(data) + 1)]
        path.write_bytes(bytes(data))
    return written


@pytest.mark.parametrize("chunk", [HEADER_SIZE, 100, 4096, 65_536])
@pytest.mark.parametrize("seed", range(4))
async def test_recovery_in_small_chunks_finds_what_a_whole_read_finds(
    open_log: OpenLog,
    monkeypatch: pytest.MonkeyPatch,
    log_dir: Path,
    tmp_path: Path,
    chunk: int,
    seed: int,
) -> None:
    await damaged_log(open_log, log_dir, seed)
    copy = tmp_path / "copy"
    shutil.copytree(log_dir, copy)
    whole, whole_report = open_log()  # the default chunk is larger than any segment here
    expected = await read_records(whole, 0)

    monkeypatch.setattr("firehose.wal.SCAN_CHUNK", chunk)
    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        assert self.suffix != SEGMENT_SUFFIX, f"recovery read all of {self} at once"
        return real_read_bytes(self)

    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    chunked, report = open_log(copy)
    monkeypatch.undo()

    assert reads
    assert [(c.path.name, c.offset, c.length) for c in report.corruptions] == [
        (c.path.name, c.offset, c.length) for c in whole_report.corruptions
    ]
    assert (report.frames, report.records_pending, report.bytes_pending) == (
        whole_report.frames,
        whole_report.records_pending,
        whole_report.bytes_pending,
    )
    assert chunked.next_seq == whole.next_seq
    assert [p.stat().st_size for p in segment_files(copy)] == [
        p.stat().st_size for p in segment_files(log_dir)
    ]
    assert await read_records(chunked, 0) == expected


async def test_recovery_of_a_segment_much_larger_than_its_chunk(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    monkeypatch.setattr("firehose.wal.SCAN_CHUNK", 1000)
    written, offsets = await write_frames(
        open_log, [[b"%d-" % k + b"r" * (k % 700), *tricky_records()] for k in range(400)]
    )
    [path] = segment_files(log_dir)
    size = path.stat().st_size
    assert size > 300 * 1000
    flip(path, offsets[150] + HEADER_SIZE + 3)  # a frame that spans chunks, in the middle
    torn = encode_frame(written[-1][-1][0] + 1, 1, [b"torn"] * 300)[:-1]  # spans chunks too
    with path.open("ab") as handle:
        handle.write(torn)

    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", pread)
    wal, report = open_log()
    monkeypatch.setattr(os, "pread", real_pread)
    ends = [*offsets[1:], size]
    largest_frame = max(end - start for start, end in zip(offsets, ends, strict=True))
    assert largest_frame > 1000 and max(reads) <= largest_frame
    assert sum(reads) < 3 * path.stat().st_size
    assert [(c.offset, c.length) for c in report.corruptions] == [
        (offsets[150], offsets[151] - offsets[150]),
        (size, len(torn)),
    ]
    assert path.stat().st_size == size
    kept = [record for index, frame in enumerate(written) for record in frame if index != 150]
    assert report.frames == 399 and report.records_pending == len(kept)
    assert await read_records(wal) == kept
    assert wal.next_seq == written[-1][-1][0] + 1


# -- a damaged log is never silent -----------------------------------------------------------


async def three_segments(open_log: OpenLog, log_dir: Path) -> tuple[list[Record], list[Path]]:
    """Seqs 1-2, 3-4 and 5-6, one segment each."""
    written, _ = await write_frames(
        open_log, [[b"%d" % k * 40, b"%d" % k * 40] for k in range(3)], segment_bytes=200
    )
    files = segment_files(log_dir)
    assert len(files) == 3
    return [record for frame in written for record in frame], files


@pytest.mark.parametrize("missing", [0, 1])
async def test_missing_segment_is_reported(
    open_log: OpenLog, log_dir: Path, caplog: pytest.LogCaptureFixture, missing: int
) -> None:
    written, files = await three_segments(open_log, log_dir)
    files[missing].unlink()
    wal, report = open_log(segment_bytes=200)
    [problem] = report.problems
    lost = f"{2 * missing + 1}-{2 * missing + 2}"
    assert (problem.kind, problem.records_affected) == ("gap", 2)
    assert f"records {lost} are missing before {files[missing + 1]}" in problem.message
    assert report.records_lost == 2 and report.corruptions == []
    assert any(
        r.levelname == "ERROR" and "2 records affected" in r.getMessage() for r in caplog.records
    )
    kept = [record for record in written if record[0] not in (2 * missing + 1, 2 * missing + 2)]
    assert report.records_pending == len(kept)
    assert await read_records(wal) == kept
    assert wal.next_seq == 7
    kept += await put(wal, [b"after"], 1)
    assert await read_records(wal) == kept


async def test_segments_lost_after_the_last_one_kept_leave_their_seqs_unused(
    open_log: OpenLog, log_dir: Path
) -> None:
    written, files = await three_segments(open_log, log_dir)
    files[1].unlink()
    files[2].write_bytes(b"garbage")  # its name still says seqs up to 4 were handed out
    wal, report = open_log(segment_bytes=200)
    assert [(p.kind, p.records_affected) for p in report.problems] == [
        ("gap", 2),
        ("corrupt", None),
    ]
    assert wal.next_seq == 5
    assert await put(wal, [b"new"], 1) == [(5, 1, b"new")]
    assert await read_records(wal) == [*written[:2], (5, 1, b"new")]


async def test_watermark_beyond_the_end_of_the_log_is_reported(
    open_log: OpenLog, log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await three_segments(open_log, log_dir)
    (log_dir / WATERMARK_FILE).write_bytes(b"10")
    wal, report = open_log(segment_bytes=200)
    [problem] = report.problems
    assert (problem.kind, problem.records_affected) == ("watermark-beyond-end", 4)
    assert "watermark 10 is 4 records beyond" in problem.message
    assert report.records_lost == 0 and report.records_pending == 0
    assert any("4 records affected" in r.getMessage() for r in caplog.records)
    # Seqs up to the watermark may name delivered objects: none is handed out again.
    assert wal.next_seq == 11
    assert await put(wal, [b"new"], 1) == [(11, 1, b"new")]
    assert await read_records(wal) == [(11, 1, b"new")]


async def test_watermark_at_a_lost_segments_end_is_not_beyond_the_log(
    open_log: OpenLog, log_dir: Path
) -> None:
    # Delivered up to 2, the segment holding 1-2 is deleted as delivered once the next one
    # exists; a crash then tore that next segment's only frame.
    wal, _ = open_log()
    await put(wal, [b"a", b"b"], 1)
    await wal.mark_delivered(2)
    await wal.close()
    (log_dir / f"{3:020d}{SEGMENT_SUFFIX}").write_bytes(encode_frame(3, 9, [b"torn"])[:20])
    wal, report = open_log()
    assert [(p.kind, p.records_affected) for p in report.problems] == [("corrupt", None)]
    assert segment_files(log_dir) == []
    assert wal.next_seq == 3


async def test_corrupt_first_frame_of_a_segment_counts_its_records(
    open_log: OpenLog, log_dir: Path
) -> None:
    written, offsets = await write_frames(open_log, [[b"a"], [b"b", b"c"], [b"d"]])
    [path] = segment_files(log_dir)
    flip(path, 20)
    wal, report = open_log()
    [problem] = report.problems
    assert (problem.kind, problem.records_affected) == ("corrupt", 1)
    assert f"{offsets[1]} corrupt or torn bytes at offset 0" in problem.message
    assert await read_records(wal, 0) == written[1] + written[2]


# -- out of file descriptors -----------------------------------------------------------------


def emfile_once(monkeypatch: pytest.MonkeyPatch, target: Path) -> list[Path]:
    """Make the next os.open of `target` fail as if the process had no fd left; logs opens."""
    real_open = os.open
    opened: list[Path] = []
    failed = False

    def fake_open(path: str | Path, flags: int, mode: int = 0o777) -> int:
        nonlocal failed
        if Path(path) == target and not failed:
            failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        opened.append(Path(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", fake_open)
    return opened


async def test_no_fd_for_the_folder_fsync_fails_only_that_sync(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    wal, _ = open_log()
    reader = wal.reader()
    opened = emfile_once(monkeypatch, log_dir)
    first, _ = wal.append([b"a"], 1)  # a new segment: its folder entry must be made durable
    with pytest.raises(WalError, match="Too many open files"):
        await wal.sync()
    assert wal.failure is None, "a missing fd poisoned the log"
    assert await reader.read() == [], "a frame whose segment may vanish was made readable"

    expected = [(first, 1, b"a")] + await put(wal, [b"b"], 2)
    assert log_dir in opened, "acknowledged without the folder fsync"
    assert await read_records(wal) == expected
    expected += await put(wal, [b"c"], 3)
    await wal.close()
    wal, report = open_log()
    assert report.problems == []
    assert await read_records(wal) == expected


async def test_no_fd_for_a_new_segment_fails_only_that_append(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    wal, _ = open_log()
    emfile_once(monkeypatch, log_dir / f"{1:020d}{SEGMENT_SUFFIX}")
    with pytest.raises(WalError, match="Too many open files"):
        wal.append([b"lost"], 1)
    assert wal.failure is None and wal.next_seq == 1
    expected = await put(wal, [b"a"], 2)
    await wal.close()
    wal, report = open_log()
    assert report.problems == []
    assert await read_records(wal) == expected


FD_LIMIT_SCRIPT = """
import asyncio, os, resource, sys
from pathlib import Path
from typing import Any
from firehose.errors import WalError
from firehose.wal import WriteAheadLog

async def main(directory: Path) -> None:
    wal = WriteAheadLog(directory)
    wal.open()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(map(int, os.listdir("/proc/self/fd")))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
    fillers = []
    try:
        while True:
            fillers.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    os.close(fillers.pop())  # room for the new segment, none for its folder
    wal.append([b"a"], 1)
    try:
        await wal.sync()
        print("sync succeeded without an fd for the folder")
    except WalError:
        print("sync failed")
    print("failure:", wal.failure)
    for fd in fillers:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wal.append([b"b"], 2)
    await wal.sync()
    await wal.close()
    wal = WriteAheadLog(directory)
    report = wal.open()
    frames = await wal.reader().read()
    print("records:", [bytes(f.data) for f in frames], "problems:", report.problems)
    await wal.close()

asyncio.run(main(Path(sys.argv[1])))
"""


def test_fd_limit_reached_does_not_poison_the_log(log_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FD_LIMIT_SCRIPT, str(log_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "sync failed",
        "failure: None",
        "records: [b'a', b'b'] problems: []",
    ], result.stderr
