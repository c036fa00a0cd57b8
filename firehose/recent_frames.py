"""The frames this run appended to the log, kept in memory until its reader takes them.

A delivery loop that keeps up reads each put's frame right after its group commit. Handing it
the frame the append built, instead of reading it back, saves per put a trip to a reading
thread, a read of the segment and a crc check; the records are the same bytes either way.

Only durable frames are handed out, in log order, and only while the reader's next frame is
the oldest one kept. A reader that fell behind (the bound dropped frames while delivery was
busy, or it started from an older watermark) reads the log until it reaches what is kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from firehose.frames import Frame


@dataclass(slots=True)
class Appended:
    """A frame as appended: where it ends in its segment, and when it is durable."""

    frame: Frame
    segment_first_seq: int
    end: int
    appends: int  # the log's count of appends once it was written: durable when that many are


class RecentFrames:
    """Appended frames in log order, at most about `max_bytes` of them (0 keeps none)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: deque[Appended] = deque()
        self._bytes = 0

    def add(self, appended: Appended) -> None:
        if self.max_bytes <= 0:
            return
        self._kept.append(appended)
        self._bytes += appended.frame.size
        while self._bytes > self.max_bytes:
            self._drop_oldest()

    def take(self, after_seq: int, durable_appends: int, max_bytes: int) -> list[Appended] | None:
        """The kept durable frames that come next after `after_seq`, about `max_bytes` of them,
        no longer kept; [] when the next one is not durable yet; None when the frame that holds
        `after_seq + 1` is not kept, so only the log has it."""
        kept = self._kept
        while kept and kept[0].frame.last_seq <= after_seq:
            self._drop_oldest()  # read from the log meanwhile
        if not kept or kept[0].frame.first_seq > after_seq + 1:
            return None
        taken: list[Appended] = []
        budget = max_bytes
        while kept and budget > 0 and kept[0].appends <= durable_appends:
            budget -= kept[0].frame.size
            taken.append(self._drop_oldest())
        return taken

    def clear(self) -> None:
        self._kept.clear()
        self._bytes = 0

    def _drop_oldest(self) -> Appended:
        oldest = self._kept.popleft()
        self._bytes -= oldest.frame.size
        return oldest
