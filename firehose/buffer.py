"""Destination buffers keyed by partition, and the delivered watermark they allow.

Each partition has its own buffer that flushes on its own size or interval. The log's delivered
watermark may pass a record only once no buffer and no delivery in flight holds it: it is the
low-water mark of everything still held, so a neighbour's delivery never lets a crash lose a
record that waits in another partition's buffer.

Two bounds keep many partitions in check: at most `max_partitions` hold data at once (a run
that would open one more is refused, for the error output), and past `max_held_bytes` held
in all partitions together the largest are flushed early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from firehose.batch import Batch, BatchBuilder, PartitionKey, RecordRun
from firehose.destination import FailedRecord

# Dynamic partitioning's error output type, and the code of a record refused for the limit.
PARTITIONING_FAILED = "partitioning-failed"
PARTITION_COUNT_EXCEEDED = "DynamicPartitioning.PartitionCountExceeded"


class PartitionBuffers:
    """One open batch per partition; `add` and `due` hand out the batches to deliver."""

    def __init__(
        self,
        max_bytes: int,
        interval_ms: int,
        *,
        object_id: Callable[[int], str] | None = None,
        max_partitions: int | None = None,
        max_held_bytes: int | None = None,
        max_records: int | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.interval_ms = interval_ms
        self.max_partitions = max_partitions
        self.max_held_bytes = max_held_bytes
        self.held_bytes = 0
        self._object_id = object_id
        self._builders: dict[PartitionKey, BatchBuilder] = {}

    def admit(
        self, routed: Sequence[tuple[PartitionKey, RecordRun]]
    ) -> tuple[list[tuple[PartitionKey, RecordRun]], list[FailedRecord]]:
        """The runs that fit under the partition limit, and the records of those that would
        open a partition past it, as error records."""
        if self.max_partitions is None:
            return list(routed), []
        admitted, refused = [], []
        opened = set(self._builders)
        for partition, run in routed:
            if partition not in opened and len(opened) >= self.max_partitions:
                message = (
                    f"the stream has {self.max_partitions} active partitions, the most it may "
                    "have; this record would open another"
                )
                refused += [
                    FailedRecord(record, PARTITIONING_FAILED, PARTITION_COUNT_EXCEEDED, message)
                    for record in run.records()
                ]
                continue
            opened.add(partition)
            admitted.append((partition, run))
        return admitted, refused

    def add(self, run: RecordRun, partition: PartitionKey = None) -> list[Batch]:
        """Buffer `run` in its partition; returns the batches that became full."""
        builder = self._builders.get(partition)
        if builder is None:
            builder = BatchBuilder(
                self.max_bytes,
                object_id=self._object_id,
                partition=partition,
                max_records=self.max_records,
            )
            self._builders[partition] = builder
        full = builder.add(run)
        self.held_bytes += len(run.data) - sum(batch.size_bytes for batch in full)
        if builder.empty:
            del self._builders[partition]  # an idle partition costs nothing
        if self.max_held_bytes is not None and self.held_bytes > self.max_held_bytes:
            full += self._flush_largest()
        return full

    def _flush_largest(self) -> list[Batch]:
        """Seal the largest partitions until what is held is back under the bound."""
        sealed = []
        assert self.max_held_bytes is not None
        while self.held_bytes > self.max_held_bytes and self._builders:
            partition = max(self._builders, key=lambda p: self._builders[p].current.size_bytes)
            sealed.append(self._seal(partition))
        return sealed

    def _seal(self, partition: PartitionKey) -> Batch:
        batch = self._builders.pop(partition).seal()
        self.held_bytes -= batch.size_bytes
        return batch

    def due(self, now_ms: int, *, everything: bool = False) -> list[Batch]:
        """Seal and return the batches whose oldest record has waited the interval (or all)."""
        sealed = []
        for partition, builder in list(self._builders.items()):
            oldest = builder.current.oldest_arrival_ms
            if everything or (oldest is not None and now_ms - oldest >= self.interval_ms):
                sealed.append(self._seal(partition))
        sealed.sort(key=lambda batch: batch.first_seq)
        return sealed

    def next_due_ms(self) -> int | None:
        """When the next interval flush is due (epoch ms), or None when nothing is buffered."""
        oldest = [
            builder.current.oldest_arrival_ms
            for builder in self._builders.values()
            if builder.current.oldest_arrival_ms is not None
        ]
        return min(oldest) + self.interval_ms if oldest else None

    def lowest_held_seq(self) -> int | None:
        """The lowest seq any buffer holds (a batch's runs are in seq order)."""
        firsts = [builder.current.first_seq for builder in self._builders.values()]
        return min(firsts) if firsts else None

    def oldest_arrival_ms(self) -> int | None:
        oldest = [
            builder.current.oldest_arrival_ms
            for builder in self._builders.values()
            if builder.current.oldest_arrival_ms is not None
        ]
        return min(oldest) if oldest else None

    @property
    def partitions(self) -> int:
        return len(self._builders)

    @property
    def empty(self) -> bool:
        return not self._builders


def low_water_mark(read_through: int, held: Iterable[int | None]) -> int:
    """The highest seq the log may mark delivered: just below the lowest seq still held (by a
    buffer or a delivery in flight), or everything read when nothing is held."""
    lowest = [seq for seq in held if seq is not None]
    return min(lowest) - 1 if lowest else read_through
