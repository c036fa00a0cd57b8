"""Flush triggers, retries and restart of one DeliveryStream, against a list-backed destination."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firehose.errors import DeliveryError, NotAcceptingError, WalError
from firehose.wal import WriteAheadLog
from tests.factories import memory_stream

MIB = 1024 * 1024


def records(count: int, size: int = 100, start: int = 0) -> list[bytes]:
    return [f"{i:0{size - 1}d}\n".encode() for i in range(start, start + count)]


async def test_size_trigger_flushes_full_buffers_only(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, size_mib=1, interval=900)
    await stream.open()
    sent = records(15_000)  # 1.43 MiB: one full 1 MiB buffer and a remainder
    for i in range(0, len(sent), 500):
        await stream.put(sent[i : i + 500])
    await dest.wait_for_records(MIB // 100)
    await asyncio.sleep(0.3)
    assert len(dest.delivered) == 1
    _, body, count = dest.delivered[0]
    assert len(body) <= MIB and count == MIB // 100
    assert body == b"".join(sent[:count])
    await stream.close(timeout=5)


async def test_interval_trigger_fires_without_new_records(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, size_mib=128, interval=1)
    await stream.open()
    await stream.put(records(10))
    assert dest.delivered == []
    await dest.wait_for_records(10, timeout=5)
    assert dest.data == b"".join(records(10))
    await stream.close(timeout=5)


async def test_zero_interval_delivers_at_once(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, size_mib=128, interval=0)
    await stream.open()
    await stream.put(records(3))
    await dest.wait_for_records(3, timeout=2)
    await stream.close(timeout=5)


async def test_shutdown_flushes_what_no_trigger_would(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, size_mib=128, interval=900)
    await stream.open()
    await stream.put(records(42))
    await asyncio.sleep(0.2)
    assert dest.delivered == []
    assert await stream.close(timeout=5)
    assert dest.data == b"".join(records(42))
    assert dest.closed


async def test_failed_delivery_is_retried_with_the_same_object_id(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    dest.failures_left = 2
    await stream.open()
    await stream.put(records(5))
    await dest.wait_for_records(5, timeout=15)
    assert len(dest.attempts) == 3 and len(set(dest.attempts)) == 1
    assert len(dest.delivered) == 1
    assert stream.counters.delivery_failures == 2
    assert stream.counters.last_error == "destination down (test)"
    await stream.close(timeout=5)


async def test_undelivered_records_survive_a_restart(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    dest.fail_forever = True
    await stream.open()
    await stream.put(records(7))
    await stream.put(records(3, start=7))
    assert not await stream.close(timeout=0.5)
    assert dest.delivered == []

    again, dest2 = memory_stream(tmp_path, interval=0)
    await again.open()
    assert again.counters.recovery.records_pending == 10
    await dest2.wait_for_records(10, timeout=5)
    assert dest2.data == b"".join(records(10))
    assert await again.close(timeout=5)

    third, dest3 = memory_stream(tmp_path, interval=0)
    await third.open()
    assert third.counters.recovery.records_pending == 0
    await asyncio.sleep(0.2)
    assert dest3.delivered == []
    await third.close(timeout=5)


async def test_undelivered_limit_turns_into_backpressure(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0, max_undelivered_bytes=1000)
    dest.open.clear()  # the destination holds every delivery
    await stream.open()
    first, taken = await stream.put(records(15))  # 1500 bytes: only 10 fit
    assert (first, taken) == (1, 10)
    assert (await stream.put(records(1)))[1] == 0  # none fit: the API answers it as throttled
    assert stream.counters.throttled_records == 6
    room = asyncio.create_task(stream.wait_for_room(100))
    await asyncio.sleep(0.1)
    assert not room.done()  # a source waits here instead of failing or spinning
    dest.open.set()
    await dest.wait_for_records(10, timeout=5)
    await asyncio.wait_for(room, 5)
    assert stream.undelivered_bytes == 0
    _, taken = await stream.put(records(1))
    assert taken == 1
    await stream.close(timeout=5)


async def test_put_after_close_is_refused(tmp_path: Path) -> None:
    stream, _ = memory_stream(tmp_path)
    await stream.open()
    await stream.close(timeout=1)
    with pytest.raises(NotAcceptingError):
        await stream.put(records(1))


@pytest.mark.parametrize("name", [".", ".."])
async def test_dot_names_get_a_log_of_their_own(tmp_path: Path, name: str) -> None:
    stream, dest = memory_stream(tmp_path / "data", name=name, interval=0)
    await stream.open()
    await stream.put(records(2))
    await dest.wait_for_records(2)
    await stream.close(timeout=5)
    assert stream.wal.directory.parent == tmp_path / "data" / "streams"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["streams"]


async def test_an_unexpected_error_restarts_delivery_instead_of_killing_it(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    dest.unexpected = RuntimeError("a bug in a destination")
    await stream.open()
    await stream.put(records(4))
    await dest.wait_for_records(4, timeout=10)
    assert stream.delivering
    assert stream.counters.delivery_failures == 1
    await stream.put(records(2, start=4))
    await dest.wait_for_records(6, timeout=10)
    assert dest.data == b"".join(records(6))
    assert await stream.close(timeout=5)


async def test_a_failed_watermark_write_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    real = stream.wal._write_watermark
    failures = [OSError(28, "No space left on device")]

    def flaky(seq: int) -> None:
        if failures:
            raise failures.pop()
        real(seq)

    monkeypatch.setattr(stream.wal, "_write_watermark", flaky)
    await stream.put(records(3))
    for _ in range(100):
        if stream.wal.delivered_seq == 3:
            break
        await asyncio.sleep(0.05)
    assert stream.wal.delivered_seq == 3
    assert len({object_id for object_id, _, _ in dest.delivered}) == 1  # rewritten, same key
    assert await stream.close(timeout=5)


async def test_shutdown_does_not_wait_out_an_error_retrying_cannot_fix(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    dest.fail_forever = True
    dest.error = DeliveryError("NoSuchBucket (test)", retriable=False)
    await stream.open()
    await stream.put(records(1))
    await asyncio.sleep(0.2)
    # The hour-long timeout must not be waited out: the guard only catches a hang.
    assert not await asyncio.wait_for(stream.close(timeout=3600), 60)


async def test_a_batch_cut_again_after_a_restart_keeps_its_object_id(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    dest.open.clear()  # the upload hangs, as when S3 never answers
    await stream.open()
    await stream.put(records(5))
    await asyncio.sleep(0.2)
    assert not await stream.close(timeout=0.3)
    (first_attempt,) = set(dest.attempts)

    again, dest2 = memory_stream(tmp_path, interval=0)
    await again.open()
    await dest2.wait_for_records(5)
    assert dest2.delivered[0][0] == first_attempt  # same key: it overwrites, no duplicate
    await again.close(timeout=5)


async def test_a_second_process_cannot_open_the_same_log(tmp_path: Path) -> None:
    stream, _ = memory_stream(tmp_path)
    await stream.open()
    with pytest.raises(WalError, match="in use by another firehose process"):
        WriteAheadLog(stream.wal.directory).open()
    await stream.close(timeout=1)
    WriteAheadLog(stream.wal.directory).open()  # free again once closed


async def test_close_without_flush_leaves_the_buffer_to_the_next_runtime(tmp_path: Path) -> None:
    """What a runtime swap does: the old runtime delivers nothing more, the next one on the
    same log delivers every acknowledged record."""
    old, old_destination = memory_stream(tmp_path, interval=900)
    await old.open()
    await old.put([b"a\n", b"b\n"])
    assert await old.close(0, flush=False) is False
    assert old_destination.data == b""
    new, new_destination = memory_stream(tmp_path, interval=900)
    await new.open()
    await new.put([b"c\n"])
    assert await new.close(5) is True
    assert new_destination.data == b"a\nb\nc\n"
