"""The seams the HTTP endpoint needs from the stream: multiplicative jitter, a permanent error
ending a retry window at once, and batches capped by record count."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from firehose.batch import BatchBuilder, RecordRun
from firehose.buffer import PartitionBuffers
from firehose.errors import DeliveryError
from firehose.retry import RetryPolicy
from tests.factories import memory_stream
from tests.memory_destination import MemoryErrorOutput
from tests.test_stream import records
from tests.test_stream_seams import wait_until


def test_multiplicative_jitter_stays_within_its_bounds_and_the_cap() -> None:
    policy = RetryPolicy(
        initial_backoff_seconds=2.0, max_backoff_seconds=120.0, jitter_factors=(0.85, 1.15)
    )
    random.seed(7)
    for attempt in range(1, 7):  # the n-th retry: 2^n s, n = attempt
        for _ in range(50):
            assert 0.85 * 2**attempt <= policy.delay(attempt) <= 1.15 * 2**attempt
    assert all(policy.delay(7) <= 120.0 for _ in range(50))  # 2^7 s is past the cap
    assert policy.delay(100_000) == 120.0  # no overflow after days of retrying


def test_added_jitter_is_unchanged_for_the_s3_policy() -> None:
    policy = RetryPolicy()
    for attempt in (1, 3, 20, 5000):
        delay = policy.delay(attempt)
        assert policy.backoff(attempt) <= delay <= policy.backoff(attempt) + 0.5
    assert policy.backoff(5000) == 30.0


async def test_a_permanent_whole_batch_error_goes_to_the_error_output_at_once(
    tmp_path: Path,
) -> None:
    errors = MemoryErrorOutput()
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        error_output=errors,
        retry_policy=RetryPolicy(deadline_seconds=3600, initial_backoff_seconds=0.05),
    )
    dest.fail_forever = True
    dest.error = DeliveryError(
        "413 (test)",
        retriable=False,
        code="HttpEndpoint.DestinationException",
        output_type="http-endpoint-failed",
        details={"httpEndpoint": {"url": "http://x", "name": None}},
    )
    await stream.open()
    await stream.put(records(3))
    await wait_until(lambda: len(errors.written) == 3, timeout=5)
    assert len(dest.attempts) == 1  # not retried within the hour-long window
    assert {attempts for _, attempts in errors.written} == {1}
    failure = errors.written[0][0]
    assert failure.details == {"httpEndpoint": {"url": "http://x", "name": None}}
    assert failure.output_type == "http-endpoint-failed"
    await wait_until(lambda: stream.wal.delivered_seq == 3)
    assert await stream.close(timeout=5)


async def test_without_a_window_a_permanent_error_is_still_retried(tmp_path: Path) -> None:
    """S3's policy: nothing goes to the error output for a whole-batch error."""
    errors = MemoryErrorOutput()
    stream, dest = memory_stream(
        tmp_path,
        interval=0,
        error_output=errors,
        retry_policy=RetryPolicy(initial_backoff_seconds=0.01, added_jitter_seconds=0),
    )
    dest.failures_left = 3
    dest.error = DeliveryError("key too long (test)", retriable=False)
    await stream.open()
    await stream.put(records(2))
    await dest.wait_for_records(2, timeout=5)
    assert len(dest.attempts) == 4 and not errors.written
    assert await stream.close(timeout=5)


def _run(count: int, size: int = 10, first_seq: int = 1) -> RecordRun:
    data = memoryview(b"x" * (count * size))
    return RecordRun(first_seq, 1000, [size] * count, data)


@pytest.mark.parametrize("pieces", [[25_000], [9_999, 2, 10_000, 4_000], [1] * 20_001])
def test_batches_hold_at_most_max_records(pieces: list[int]) -> None:
    builder = BatchBuilder(64 * 1024 * 1024, max_records=10_000)
    full, seq = [], 1
    for count in pieces:
        full += builder.add(_run(count, first_seq=seq))
        seq += count
    full.append(builder.seal())
    counts = [batch.record_count for batch in full]
    assert sum(counts) == sum(pieces)
    assert all(count == 10_000 for count in counts[:-1]) and counts[-1] <= 10_000
    seqs = [record.seq for batch in full for record in batch.records()]
    assert seqs == list(range(1, sum(pieces) + 1))


def test_the_byte_cap_still_applies_with_a_record_cap() -> None:
    buffers = PartitionBuffers(1000, 60_000, max_records=50)
    full = buffers.add(_run(300, size=40))  # 25 records a batch by bytes, 50 by count
    assert [batch.record_count for batch in full] == [25] * 12
