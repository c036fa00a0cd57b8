"""BatchBuilder: runs of records read from the log cut into size-capped batches."""

from __future__ import annotations

import itertools
import random
import uuid
from array import array
from pathlib import Path

import pytest

from firehose.batch import Batch, BatchBuilder, RecordRun, run_from_frame
from firehose.wal import Frame, WriteAheadLog, encode_frame, scan_frames

Record = tuple[int, int, bytes]  # seq, arrival ms, data


def make_frame(first_seq: int, arrival_ms: int, records: list[bytes]) -> Frame:
    """A frame as the log reads it back: decoded from its encoding, data a memoryview."""
    [(frame, _, _)] = list(scan_frames(encode_frame(first_seq, arrival_ms, records)))
    assert frame is not None
    return frame


def make_frames(sizes: list[list[int]], first_seq: int = 1) -> tuple[list[Frame], list[Record]]:
    """Frames with records of the given sizes (distinct contents), and all their records."""
    frames, records = [], []
    seq = first_seq
    for index, frame_sizes in enumerate(sizes):
        data = [bytes([(seq + i) % 251]) * size for i, size in enumerate(frame_sizes)]
        frames.append(make_frame(seq, 1000 + index, data))
        records += [(seq + i, 1000 + index, d) for i, d in enumerate(data)]
        seq += len(data)
    return frames, records


def batch_records(batch: Batch) -> list[Record]:
    return [(r.seq, r.arrival_ms, bytes(r.data)) for r in batch.records()]


class FrameCutter:
    """A BatchBuilder fed frames as the stream feeds it: the records after `after_seq` only."""

    def __init__(self, max_bytes: int, after_seq: int) -> None:
        self.builder = BatchBuilder(max_bytes)
        self.after_seq = after_seq

    def add(self, frame: Frame) -> list[Batch]:
        run = run_from_frame(frame, self.after_seq)
        if run is None:
            return []
        self.after_seq = frame.last_seq
        return self.builder.add(run)

    @property
    def current(self) -> Batch:
        return self.builder.current

    @property
    def empty(self) -> bool:
        return self.builder.empty

    def seal(self) -> Batch:
        return self.builder.seal()


def build(frames: list[Frame], max_bytes: int, after_seq: int = 0) -> list[Batch]:
    """Every batch of `frames`: the full ones, then what is left sealed."""
    builder = FrameCutter(max_bytes, after_seq)
    batches = [batch for frame in frames for batch in builder.add(frame)]
    if not builder.empty:
        batches.append(builder.seal())
    assert builder.empty
    return batches


def check_batch(batch: Batch, max_bytes: int) -> None:
    """A batch's own invariants: its runs, sizes, counts and seqs agree."""
    records = batch_records(batch)
    assert records, "an empty batch"
    assert batch.record_count == len(records)
    assert batch.size_bytes == sum(len(d) for _, _, d in records)
    assert batch.size_bytes <= max_bytes or len(records) == 1, "over max_bytes"
    assert batch.first_seq == records[0][0] and batch.last_seq == records[-1][0]
    assert [seq for seq, _, _ in records] == list(range(batch.first_seq, batch.last_seq + 1))
    assert batch.oldest_arrival_ms == min(arrival for _, arrival, _ in records)
    assert b"".join(batch.chunks()) == b"".join(d for _, _, d in records)
    for run in batch.runs:
        assert len(run.data) == sum(run.lengths)
        assert run.lengths, "an empty run"


def check_batches(batches: list[Batch], max_bytes: int, records: list[Record]) -> None:
    for batch in batches:
        check_batch(batch, max_bytes)
    assert [r for batch in batches for r in batch_records(batch)] == records
    # Full batches are cut only when the next record does not fit: no tiny objects.
    for batch, following in itertools.pairwise(batches):
        next_size = len(next(following.records()).data)
        assert batch.size_bytes >= max_bytes or batch.size_bytes + next_size > max_bytes


@pytest.mark.parametrize("seed", range(40))
def test_random_frames_cut_into_batches(seed: int) -> None:
    rng = random.Random(seed)
    max_bytes = rng.choice([1, 10, 100, 1000, 5000])
    sizes = [
        [rng.choice([0, 0, 1, rng.randint(0, 300), rng.randint(0, 3000)]) for _ in range(n)]
        for n in (rng.randint(0, 12) for _ in range(rng.randint(1, 30)))
    ]
    frames, records = make_frames(sizes)
    check_batches(build(frames, max_bytes), max_bytes, records)


def test_frame_split_mid_way_keeps_every_byte() -> None:
    frames, records = make_frames([[100] * 10])
    batches = build(frames, 250)
    assert [b.record_count for b in batches] == [2, 2, 2, 2, 2]
    assert [(b.first_seq, b.last_seq) for b in batches] == [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]
    assert b"".join(bytes(run.data) for b in batches for run in b.runs) == b"".join(
        d for _, _, d in records
    )
    check_batches(batches, 250, records)


def test_batch_spanning_frames_has_one_run_per_frame() -> None:
    frames, records = make_frames([[30, 30], [30], [30, 30, 30]])
    [batch] = build(frames, 1000)
    assert [(run.first_seq, run.arrival_ms, run.lengths) for run in batch.runs] == [
        (1, 1000, [30, 30]),
        (3, 1001, [30]),
        (4, 1002, [30, 30, 30]),
    ]
    assert batch.oldest_arrival_ms == 1000
    assert batch_records(batch) == records


def test_runs_are_slices_of_the_frame_not_copies() -> None:
    [frame], _ = make_frames([[10, 20, 30]])
    builder = FrameCutter(25, 0)
    batches = builder.add(frame)
    assert [b.size_bytes for b in batches] == [10, 20, 30]
    run = batches[1].runs[0]
    assert isinstance(run, RecordRun) and isinstance(run.data, memoryview)
    assert run.data.obj is frame.data.obj


def test_exactly_full_batch_is_sealed_at_once() -> None:
    frames, records = make_frames([[40, 60], [10]])
    builder = FrameCutter(100, 0)
    [full] = builder.add(frames[0])
    assert full.size_bytes == 100 and builder.empty
    assert builder.add(frames[1]) == []
    assert not builder.empty and builder.current.size_bytes == 10
    check_batches([full, builder.seal()], 100, records)


def test_record_larger_than_max_bytes_goes_alone() -> None:
    frames, records = make_frames([[10, 10, 500, 10], [700], [5]])
    batches = build(frames, 100)
    assert [batch_records(b) for b in batches] == [
        records[0:2],
        records[2:3],
        records[3:4],
        records[4:5],
        records[5:6],
    ]
    assert [b.size_bytes for b in batches] == [20, 500, 10, 700, 5]
    check_batches(batches, 100, records)


def test_partial_batch_waits_for_more() -> None:
    frames, records = make_frames([[10], [10], [10]])
    builder = FrameCutter(1000, 0)
    for frame in frames:
        assert builder.add(frame) == []
    assert builder.current.record_count == 3
    assert batch_records(builder.seal()) == records


def test_empty_records() -> None:
    frames, records = make_frames([[0, 0, 0], [0], [5, 0, 5, 0]])
    batches = build(frames, 5)
    check_batches(batches, 5, records)
    assert sum(b.record_count for b in batches) == 8
    [only_empty] = build(make_frames([[0] * 50])[0], 1)
    assert only_empty.record_count == 50 and only_empty.size_bytes == 0
    assert only_empty.first_seq == 1 and only_empty.last_seq == 50


def test_frame_with_no_records_adds_nothing() -> None:
    builder = FrameCutter(10, 0)
    assert builder.add(make_frame(1, 5, [])) == []
    assert builder.empty and builder.after_seq == 0


@pytest.mark.parametrize("after_seq", [0, 1, 4, 5, 6, 9, 10, 15, 20])
@pytest.mark.parametrize("max_bytes", [1, 25, 1000])
def test_after_seq_skips_records_already_taken(after_seq: int, max_bytes: int) -> None:
    frames, records = make_frames([[10] * 5, [10] * 5, [10] * 5])
    batches = build(frames, max_bytes, after_seq)
    check_batches(batches, max_bytes, records[after_seq:])


def test_same_frames_twice_give_no_duplicates() -> None:
    frames, records = make_frames([[10] * 5, [10] * 5])
    builder = FrameCutter(25, 0)
    batches = [b for frame in frames for b in builder.add(frame)]
    # A reader may hand back a frame that starts before what was taken: nothing repeats.
    batches += [b for frame in frames for b in builder.add(frame)]
    batches.append(builder.seal())
    check_batches(batches, 25, records)
    assert builder.after_seq == 10


def test_after_seq_follows_what_was_taken() -> None:
    frames, _ = make_frames([[10] * 5])
    builder = FrameCutter(25, 0)
    builder.add(frames[0])
    assert builder.after_seq == 5
    # Resuming a new builder where the old stopped continues without a gap.
    resumed = FrameCutter(25, 3)
    assert resumed.add(frames[0]) == []
    assert resumed.current.first_seq == 4 and resumed.current.record_count == 2


def test_whole_run_is_kept_as_is_when_it_fits() -> None:
    [frame], _ = make_frames([[10, 20]])
    run = run_from_frame(frame, 0)
    assert run is not None
    builder = BatchBuilder(100)
    assert builder.add(run) == []
    assert builder.current.runs == [run]


def cut_one_by_one(sizes: list[int], max_bytes: int, max_records: int | None) -> list[int]:
    """The batches' record counts, cutting record by record: a batch is sealed once full (by
    bytes or count), or before a record that would not fit; a record over max_bytes goes alone."""
    counts, count, held = [], 0, 0
    for size in sizes:
        if count and (held + size > max_bytes or count == max_records):
            counts.append(count)
            count, held = 0, 0
        count, held = count + 1, held + size
        if held >= max_bytes or count == max_records:
            counts.append(count)
            count, held = 0, 0
    return counts + ([count] if count else [])


@pytest.mark.parametrize("seed", range(60))
def test_runs_are_cut_as_record_by_record_would_be(seed: int) -> None:
    # Whole runs that fit take a shortcut: it must cut exactly where the record walk does,
    # at both limits and at their edges (a run that fills the batch to the byte or record).
    rng = random.Random(seed)
    max_bytes = rng.choice([1, 7, 30, 100, 1000])
    max_records = rng.choice([None, 1, 2, 5, 40])
    sizes = [
        [rng.choice([1, rng.randint(1, 20), rng.randint(1, 200)]) for _ in range(n)]
        for n in (rng.randint(0, 12) for _ in range(rng.randint(1, 40)))
    ]  # no empty records: one that follows a batch full to the byte joins it within a run
    frames, records = make_frames(sizes)
    builder = BatchBuilder(max_bytes, max_records=max_records)
    batches = []
    for frame in frames:
        run = run_from_frame(frame, 0)
        if run is not None:
            batches += builder.add(run)
        # A batch that became full went out with the add that filled it.
        assert builder.current.size_bytes < max_bytes
        assert max_records is None or builder.current.record_count < max_records
    if not builder.empty:
        batches.append(builder.seal())
    flat = [size for frame_sizes in sizes for size in frame_sizes]
    assert [b.record_count for b in batches] == cut_one_by_one(flat, max_bytes, max_records)
    for batch in batches:
        check_batch(batch, max_bytes)
    assert [r for batch in batches for r in batch_records(batch)] == records


def test_subset_keeps_object_id_and_partition() -> None:
    frames, records = make_frames([[3, 4, 5]])
    builder = BatchBuilder(100, partition=(("customer", "7"),))
    run = run_from_frame(frames[0], 0)
    assert run is not None
    builder.add(run)
    batch = builder.seal()
    chosen = [r for r in batch.records() if r.seq != 2]
    retry = batch.subset(chosen)
    assert retry.object_id == batch.object_id and retry.partition == batch.partition
    assert batch_records(retry) == [records[0], records[2]]


def test_object_id_is_fixed_per_batch() -> None:
    frames, _ = make_frames([[10] * 10])
    batches = build(frames, 30)
    ids = [b.object_id for b in batches]
    assert [b.object_id for b in batches] == ids  # reading it again gives the same
    assert len(set(ids)) == len(ids)
    for object_id in ids:
        assert uuid.UUID(object_id).version == 4


def test_records_yield_seq_arrival_and_data() -> None:
    frames, records = make_frames([[3, 0, 7], [2]])
    [batch] = build(frames, 100)
    got = list(batch.records())
    assert [(r.seq, r.arrival_ms) for r in got] == [(s, a) for s, a, _ in records]
    assert [bytes(r.data) for r in got] == [d for _, _, d in records]
    assert all(isinstance(r.data, memoryview) for r in got)
    # Iterating again gives the same records.
    assert batch_records(batch) == records


async def test_batches_from_the_log(tmp_path: Path) -> None:
    rng = random.Random(9)
    wal = WriteAheadLog(tmp_path, segment_bytes=4000)
    wal.open()
    records: list[Record] = []
    try:
        for index in range(60):
            data = [rng.randbytes(rng.randint(0, 400)) for _ in range(rng.randint(1, 8))]
            first, _ = wal.append(data, index)
            records += [(first + i, index, d) for i, d in enumerate(data)]
        await wal.sync()
        reader = wal.reader()
        builder = FrameCutter(1500, reader.after_seq)
        batches: list[Batch] = []
        while frames := await reader.read(700):
            for frame in frames:
                batches += builder.add(frame)
        batches.append(builder.seal())
        check_batches(batches, 1500, records)
    finally:
        await wal.close()


def test_lengths_array_of_frame_is_not_changed() -> None:
    frame = Frame(1, 5, array("I", [1, 2]), memoryview(b"abc"))
    build([frame], 1)
    assert frame.lengths.tolist() == [1, 2]


def test_a_run_of_several_arrival_times_keeps_each_and_cuts_with_the_oldest() -> None:
    data = [b"aa", b"bbb", b"c", b"dd"]
    run = RecordRun(
        7, 100, [2, 3, 1, 2], memoryview(b"".join(data)), [7, 9, 12, 13], [0, 0, 0, 0],
        [300, 100, 200, 400],
    )  # fmt: skip
    assert [(r.seq, r.arrival_ms, bytes(r.data)) for r in run.records()] == [
        (7, 300, b"aa"), (9, 100, b"bbb"), (12, 200, b"c"), (13, 400, b"dd"),
    ]  # fmt: skip
    builder = BatchBuilder(5)
    [first] = builder.add(run)  # aa + bbb fill the first batch; c and dd wait
    assert (first.oldest_arrival_ms, [r.arrival_ms for r in first.records()]) == (100, [300, 100])
    current = builder.current
    assert current.oldest_arrival_ms == 200
    assert [(r.seq, r.arrival_ms) for r in current.records()] == [(12, 200), (13, 400)]
