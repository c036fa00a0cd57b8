"""Which shard positions are safe to checkpoint: those whose records the stream has delivered.

Each put gives a run of stream seqs; the reader notes the last seq of the run and the Kinesis
sequence number of its last record. When the delivered watermark passes that seq, the position
becomes the shard's checkpoint. A finished shard checkpoints SHARD_END once its last put is
delivered, which is what lets its children be read.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

SHARD_END = "SHARD_END"


class _Put(NamedTuple):
    last_seq: int
    shard_id: str
    sequence_number: str


class PositionTracker:
    def __init__(self, delivered_seq: int = -1) -> None:
        self.delivered_seq = delivered_seq
        self._puts: deque[_Put] = deque()
        self._safe: dict[str, str] = {}
        self._last_put: dict[str, int] = {}
        self._ended: set[str] = set()

    def put(self, shard_id: str, last_seq: int, sequence_number: str) -> None:
        """Records of `shard_id` up to `sequence_number` are in the log, up to stream seq
        `last_seq`."""
        self._last_put[shard_id] = last_seq
        if last_seq <= self.delivered_seq:
            self._safe[shard_id] = sequence_number
        else:
            self._puts.append(_Put(last_seq, shard_id, sequence_number))

    def delivered(self, seq: int) -> None:
        self.delivered_seq = max(self.delivered_seq, seq)
        while self._puts and self._puts[0].last_seq <= self.delivered_seq:
            put = self._puts.popleft()
            self._safe[put.shard_id] = put.sequence_number
        for shard_id in self._ended:
            if self._last_put.get(shard_id, -1) <= self.delivered_seq:
                self._safe[shard_id] = SHARD_END

    def ended(self, shard_id: str) -> None:
        """The shard is closed and every record of it was put."""
        self._ended.add(shard_id)
        self.delivered(self.delivered_seq)

    def safe(self, shard_id: str) -> str | None:
        """The position to checkpoint for the shard: None if nothing new was delivered."""
        return self._safe.get(shard_id)

    def forget(self, shard_id: str) -> None:
        """The shard's lease is gone: what this instance put of it is no longer its to record."""
        self._puts = deque(put for put in self._puts if put.shard_id != shard_id)
        self._safe.pop(shard_id, None)
        self._last_put.pop(shard_id, None)
        self._ended.discard(shard_id)

    def pending(self, shard_id: str) -> bool:
        """Whether records of the shard are in the log but not delivered yet."""
        return self._last_put.get(shard_id, -1) > self.delivered_seq
