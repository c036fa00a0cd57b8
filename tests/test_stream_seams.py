"""The stream's seams: partition buffers and the low-water mark, per-record failures and retry
windows, the error output, sources' arrival times and back-pressure, and /health's states."""

from __future__ import annotations

import asyncio
from pathlib import Path

from firehose.batch import PartitionKey, RecordRun
from firehose.destination import FailedRecord
from firehose.retry import RetryPolicy
from firehose.stage import StageOutput
from firehose.stream import DeliveryState, DeliveryStream
from tests.factories import memory_stream
from tests.memory_destination import MemoryErrorOutput
from tests.test_stream import records


def state(stream: DeliveryStream) -> DeliveryState:
    """Read afresh each time (a property read would be narrowed once by the type checker)."""
    return stream.delivery_state


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    async def _poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(_poll(), timeout)


class SplitByFirstDigit:
    """A stage that routes each record to a partition named by its last digit, one record a
    run, and refuses records ending in 9 (to the error output)."""

    def __init__(self) -> None:
        self.closed = False

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        output = StageOutput()
        for run in runs:
            offset = 0
            for index, length in enumerate(run.lengths):
                data = run.data[offset : offset + length]
                offset += length
                seq = run.first_seq + index
                digit = bytes(data).rstrip(b"\n")[-1:].decode()
                if digit == "9":
                    from firehose.batch import Record

                    record = Record(seq, run.arrival_ms, data)
                    output.failed.append(
                        FailedRecord(record, "processing-failed", "Test.Nine", "nine")
                    )
                    continue
                partition: PartitionKey = (("digit", digit),)
                output.routed.append((partition, RecordRun(seq, run.arrival_ms, [length], data)))
        return output

    async def close(self) -> None:
        self.closed = True


async def test_each_partition_flushes_on_its_own_and_errors_go_to_the_error_output(
    tmp_path: Path,
) -> None:
    errors = MemoryErrorOutput()
    stage = SplitByFirstDigit()
    stream, dest = memory_stream(tmp_path, interval=1, size_mib=1, stage=stage, error_output=errors)
    await stream.open()
    await stream.put(records(30))
    await dest.wait_for_records(27, timeout=10)  # three records end in 9
    assert len(dest.delivered) == 9  # one object per digit 0..8
    assert sorted(failure.record.seq for failure, _ in errors.written) == [10, 20, 30]
    assert all(failure.output_type == "processing-failed" for failure, _ in errors.written)
    await wait_until(lambda: stream.wal.delivered_seq == 30)
    assert await stream.close(timeout=5)
    assert stage.closed


class TwoPartitions:
    """Even seqs to a partition that fills at once, odd ones to one that never fills."""

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        output = StageOutput()
        for run in runs:
            offset = 0
            for index, length in enumerate(run.lengths):
                seq = run.first_seq + index
                data = run.data[offset : offset + length]
                offset += length
                key: PartitionKey = (("p", "big" if seq % 2 == 0 else "small"),)
                size = length if seq % 2 == 0 else 1
                output.routed.append((key, RecordRun(seq, run.arrival_ms, [size], data[:size])))
        return output

    async def close(self) -> None:
        return None


async def test_the_watermark_never_passes_a_record_held_in_another_partition(
    tmp_path: Path,
) -> None:
    """The big partition delivers full batches; the small one holds seq 1 all along: the log's
    watermark must stay below it, so a crash cannot lose it."""
    stream, dest = memory_stream(tmp_path, interval=900, size_mib=1, stage=TwoPartitions())
    await stream.open()
    big = [b"x" * 999 + b"\n"] * 2200  # 1100 even records of 1000 bytes: over 1 MiB
    await stream.put(big)
    await dest.wait_for_records(1048, timeout=10)  # one full MiB of the big partition
    assert stream.health()["buffered_partitions"] >= 1
    assert stream.wal.delivered_seq == 0  # seq 1 is still buffered in the small partition
    # Crash: the task is dropped without a flush (as SIGKILL would).
    stream._task.cancel()  # type: ignore[union-attr]
    await stream.wal.close()

    again, dest2 = memory_stream(tmp_path, interval=0, size_mib=1, stage=TwoPartitions())
    await again.open()
    await dest2.wait_for_records(2200, timeout=10)  # everything again: at-least-once
    await wait_until(lambda: again.wal.delivered_seq == 2200)
    assert await again.close(timeout=5)


async def test_refused_records_alone_are_retried_until_taken(tmp_path: Path) -> None:
    """No retry window (S3's policy): only the refused records are sent again."""
    stream, dest = memory_stream(
        tmp_path, interval=0, retry_policy=RetryPolicy(initial_backoff_seconds=0.05)
    )
    refusals = {3: 2, 4: 1}  # seq -> times to refuse it

    def refuse(record: object) -> bool:
        seq = record.seq  # type: ignore[attr-defined]
        if refusals.get(seq, 0) > 0:
            refusals[seq] -= 1
            return True
        return False

    dest.refuse = refuse
    await stream.open()
    sent = records(5)
    await stream.put(sent)
    await dest.wait_for_records(5, timeout=10)
    assert [count for _, _, count in dest.delivered] == [3, 1, 1]
    assert sorted(dest.data.splitlines(keepends=True)) == sorted(sent)
    assert stream.destination.counters.failed_attempts == 2
    assert stream.destination.counters.records == 5
    await wait_until(lambda: stream.wal.delivered_seq == 5)
    assert await stream.close(timeout=5)


async def test_what_fails_past_the_retry_window_goes_to_the_error_output(tmp_path: Path) -> None:
    errors = MemoryErrorOutput()
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        error_output=errors,
        retry_policy=RetryPolicy(deadline_seconds=0.3, initial_backoff_seconds=0.05),
    )
    dest.refuse = lambda record: record.seq % 2 == 0
    await stream.open()
    await stream.put(records(6))
    await wait_until(lambda: len(errors.written) == 3)
    assert sorted(f.record.seq for f, _ in errors.written) == [2, 4, 6]
    assert all(attempts >= 2 for _, attempts in errors.written)
    assert sum(count for _, _, count in dest.delivered) == 3
    await wait_until(lambda: stream.wal.delivered_seq == 6)
    assert stream.counters.failed_records == 3
    assert await stream.close(timeout=5)


async def test_a_whole_batch_failing_past_the_window_is_filed_with_the_error_code(
    tmp_path: Path,
) -> None:
    from firehose.errors import DeliveryError

    errors = MemoryErrorOutput()
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        error_output=errors,
        retry_policy=RetryPolicy(deadline_seconds=0.2, initial_backoff_seconds=0.05),
    )
    dest.fail_forever = True
    dest.error = DeliveryError("endpoint down", code="Memory.Down", output_type="memory-failed")
    await stream.open()
    await stream.put(records(4))
    await wait_until(lambda: len(errors.written) == 4)
    assert {(f.error_code, f.output_type) for f, _ in errors.written} == {
        ("Memory.Down", "memory-failed")
    }
    assert await stream.close(timeout=5)


async def test_an_error_output_that_fails_pauses_delivery_and_loses_nothing(
    tmp_path: Path,
) -> None:
    errors = MemoryErrorOutput()
    errors.failing = True
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        error_output=errors,
        retry_policy=RetryPolicy(deadline_seconds=0.1, initial_backoff_seconds=0.05),
    )
    dest.refuse = lambda record: record.seq == 1
    await stream.open()
    await stream.put(records(2))
    await wait_until(lambda: stream.health()["last_error"] == "error output down (test)")
    await asyncio.sleep(0.3)
    assert state(stream) is DeliveryState.RETRYING
    assert stream.wal.delivered_seq == 0  # the refused record is not written anywhere yet
    errors.failing = False
    await wait_until(lambda: len(errors.written) == 1)
    await wait_until(lambda: stream.wal.delivered_seq == 2)
    assert await stream.close(timeout=5)


async def test_a_source_puts_with_its_own_arrival_time(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0)
    seen: list[int] = []
    stream.add_delivered_listener(seen.append)
    original = dest.deliver
    arrivals: list[int | None] = []

    async def deliver(batch):  # type: ignore[no-untyped-def]
        arrivals.append(batch.oldest_arrival_ms)
        return await original(batch)

    dest.deliver = deliver  # type: ignore[method-assign]
    await stream.open()
    first, taken = await stream.put(records(2), arrival_ms=1_600_000_000_000)
    assert (first, taken) == (1, 2)
    await dest.wait_for_records(2)
    assert arrivals == [1_600_000_000_000]
    await wait_until(lambda: seen and seen[-1] == 2)
    assert await stream.close(timeout=5)


async def test_health_shows_idle_delivering_stalled_and_retrying(tmp_path: Path) -> None:
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        stall_seconds=0.3,
        retry_policy=RetryPolicy(initial_backoff_seconds=5),
    )
    assert stream.health()["delivery"] == "stopped"
    await stream.open()
    assert state(stream) is DeliveryState.IDLE and stream.healthy
    assert stream.health()["oldest_undelivered_age_seconds"] is None
    dest.open.clear()  # the store stops answering
    await stream.put(records(1))
    await wait_until(lambda: state(stream) is DeliveryState.DELIVERING)
    await wait_until(lambda: state(stream) is DeliveryState.STALLED, timeout=5)
    assert not stream.healthy
    assert stream.health()["oldest_undelivered_age_seconds"] > 0
    dest.fail_forever = True
    dest.open.set()
    await wait_until(lambda: state(stream) is DeliveryState.RETRYING)
    assert stream.health()["delivery"] == "retrying"
    assert not await stream.close(timeout=0.5)
    assert state(stream) is DeliveryState.STOPPED


async def test_a_damaged_log_shows_on_health(tmp_path: Path) -> None:
    from firehose.stream import DeliveryStream
    from tests.factories import stream_config
    from tests.memory_destination import MemoryDestination

    def make() -> tuple[DeliveryStream, MemoryDestination]:
        destination = MemoryDestination()
        stream = DeliveryStream(
            stream_config(interval=900),
            destination,
            data_dir=tmp_path,
            max_undelivered_bytes=1 << 30,
            segment_bytes=4096,
        )
        return stream, destination

    stream, dest = make()
    dest.open.clear()  # nothing gets delivered: every segment stays
    await stream.open()
    for start in range(0, 90, 10):
        await stream.put(records(10, size=200, start=start))
    await stream.close(timeout=0.2)
    segments = sorted(stream.wal.directory.glob("*.wal"))
    assert len(segments) >= 3
    segments[1].unlink()

    again, dest2 = make()
    await again.open()
    problems = again.health()["log"]["problems"]
    assert [p["kind"] for p in problems] == ["gap"]
    assert problems[0]["records_affected"] > 0
    assert again.health()["log"]["records_lost_at_start"] == problems[0]["records_affected"]
    assert await again.close(timeout=5)
    delivered = sum(count for _, _, count in dest2.delivered)
    assert delivered == 90 - problems[0]["records_affected"]


class Shout:
    """A stage that upper-cases and doubles every record (sizes change), dropping 'drop'."""

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        from transforms.processor import ProcessingRecord
        from transforms.records import records_to_runs as _runs

        out = [
            ProcessingRecord(r.seq, r.arrival_ms, bytes(r.data).upper() * 2)
            for run in runs
            for r in run.records()
            if not bytes(r.data).startswith(b"drop")
        ]
        return StageOutput(routed=_runs(out))

    async def close(self) -> None:
        return None


async def test_source_backup_gets_records_as_they_came_and_the_watermark_waits_for_both(
    tmp_path: Path,
) -> None:
    from firehose.config import BufferingHints
    from firehose.destination import SourceBackup
    from tests.memory_destination import MemoryDestination

    backup = MemoryDestination()
    backup.open.clear()  # the backup store is slow
    hints = BufferingHints(size_in_mbs=1, interval_in_seconds=0)
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        stage=Shout(),
        source_backup=SourceBackup(backup, hints),
    )
    await stream.open()
    sent = [b"a\n", b"drop me\n", b"c\n"]
    await stream.put(sent)
    await dest.wait_for_records(2)
    assert dest.data == b"A\nA\nC\nC\n"
    await asyncio.sleep(0.2)
    assert stream.wal.delivered_seq == 0  # the backup still holds every record
    assert stream.undelivered_bytes == sum(map(len, sent))
    backup.open.set()
    await backup.wait_for_records(3)
    assert backup.data == b"".join(sent)  # as they came, before processing
    await wait_until(lambda: stream.wal.delivered_seq == 3)
    assert stream.undelivered_bytes == 0  # freed by the watermark, not by processed sizes
    assert stream.health()["BackupToS3.Records"] == 3
    assert await stream.close(timeout=5)


async def test_records_refused_for_what_they_are_go_to_the_error_output_at_once(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from firehose.destination import DeliveryResult

    errors = MemoryErrorOutput()
    stream, dest = memory_stream(tmp_path, interval=0, error_output=errors)
    original = dest.deliver

    async def deliver(batch):  # type: ignore[no-untyped-def]
        result = await original(batch)
        return DeliveryResult([replace(f, retriable=False) for f in result.failed])

    dest.deliver = deliver  # type: ignore[method-assign]
    dest.refuse = lambda record: record.seq == 2
    await stream.open()
    await stream.put(records(3))
    await wait_until(lambda: len(errors.written) == 1)
    assert len(dest.attempts) == 1  # not sent again
    assert [(f.record.seq, attempts) for f, attempts in errors.written] == [(2, 1)]
    await wait_until(lambda: stream.wal.delivered_seq == 3)
    assert await stream.close(timeout=5)


async def test_an_all_data_backup_gets_records_as_delivered(tmp_path: Path) -> None:
    from firehose.config import BufferingHints
    from firehose.destination import SourceBackup
    from tests.memory_destination import MemoryDestination

    backup = MemoryDestination()
    hints = BufferingHints(size_in_mbs=1, interval_in_seconds=0)
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        stage=Shout(),
        source_backup=SourceBackup(backup, hints, processed=True),
    )
    await stream.open()
    await stream.put([b"a\n", b"drop me\n"])
    await dest.wait_for_records(1)
    await backup.wait_for_records(1)
    assert backup.data == dest.data == b"A\nA\n"
    await wait_until(lambda: stream.wal.delivered_seq == 2)
    assert await stream.close(timeout=5)


class SlowOverlappableStage:
    """Passes records through after a pause, counting how many calls overlap; its third call
    fails once, as a dead stage process would."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.failed = False

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        self.calls += 1
        call = self.calls
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.05)
            if call == 3 and not self.failed:
                self.failed = True
                raise RuntimeError("the processing stage process died (test)")
            return StageOutput(routed=[(None, run) for run in runs])
        finally:
            self.running -= 1

    async def close(self) -> None:
        return None


async def test_reads_overlap_in_the_stage_and_a_failed_call_restarts_from_the_watermark(
    tmp_path: Path,
) -> None:
    """The next read is in the stage while the last is filed; when a call fails, neither it
    nor the read in flight beside it is lost: delivery starts again from the watermark."""
    stage = SlowOverlappableStage()
    stream, dest = memory_stream(tmp_path, interval=900, size_mib=1, stage=stage)
    await stream.open()
    sent = records(24_000, size=1000)  # 24 MB: many reads
    for start in range(0, len(sent), 500):
        await stream.put(sent[start : start + 500])
    assert await stream.close(timeout=30)
    assert stage.failed and stage.most_at_once > 1, (stage.calls, stage.most_at_once)
    delivered = dest.data.splitlines(keepends=True)
    assert set(delivered) == set(sent)  # at least once: a restart may deliver some again
    assert stream.wal.delivered_seq == len(sent)
