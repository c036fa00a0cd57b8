"""Destination buffers keyed by partition, and the delivered watermark they allow.

Each partition has its own buffer that flushes on its own size or interval. The log's delivered
watermark may pass a record only once no buffer and no delivery in flight holds it: it is the
low-water mark of everything still held, so a neighbour's delivery never lets a crash lose a
record that waits in another partition's buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from firehose.batch import Batch, BatchBuilder, PartitionKey, RecordRun


class PartitionBuffers:
    """One open batch per partition; `add` and `due` hand out the batches to deliver."""

    def __init__(
        self,
        max_bytes: int,
        interval_ms: int,
        *,
        object_id: Callable[[int], str] | None = None,
        max_records: int | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.interval_ms = interval_ms
        self._object_id = object_id
        self._builders: dict[PartitionKey, BatchBuilder] = {}

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
        if builder.empty:
            del self._builders[partition]  # an idle partition costs nothing
        return full

    def due(self, now_ms: int, *, everything: bool = False) -> list[Batch]:
        """Seal and return the batches whose oldest record has waited the interval (or all)."""
        sealed = []
        for partition, builder in list(self._builders.items()):
            oldest = builder.current.oldest_arrival_ms
            if everything or (oldest is not None and now_ms - oldest >= self.interval_ms):
                sealed.append(builder.seal())
                del self._builders[partition]
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
