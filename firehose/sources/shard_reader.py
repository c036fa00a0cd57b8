"""Reads one shard into a delivery stream: GetRecords about once a second, faster while behind.

Throttling backs off; an expired iterator is replaced at the last record read (the checkpoint
before any); a full log is waited out. The shard is finished when GetRecords answers no next
iterator (a split or merge closed it): the tracker then checkpoints SHARD_END once delivered.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from firehose.sources.envelope import wrap
from firehose.sources.positions import PositionTracker
from firehose.stream import DeliveryStream

log = logging.getLogger(__name__)

THROTTLED = ("ProvisionedThroughputExceededException", "LimitExceededException")
START_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
MAX_BACKOFF_SECONDS = 10.0


@dataclass
class ReadSettings:
    poll_seconds: float = 1.0
    start_timestamp: float | None = None  # for AT_TIMESTAMP
    limit: int = 10_000


@dataclass
class ShardCounters:
    get_records: int = 0
    throttled: int = 0
    expired_iterators: int = 0
    records: int = 0
    bytes: int = 0
    millis_behind_latest: dict[str, int] = field(default_factory=dict)  # per shard read


class ShardReader:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        shard_id: str,
        checkpoint: str,
        stream: DeliveryStream,
        tracker: PositionTracker,
        settings: ReadSettings,
        counters: ShardCounters,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.shard_id = shard_id
        self.position = checkpoint  # the last record read, or where to start
        self.stream = stream
        self.tracker = tracker
        self.settings = settings
        self.counters = counters

    async def run(self) -> None:
        """Read until the shard ends (returns) or the task is cancelled."""
        backoff = self.settings.poll_seconds
        iterator = await self._iterator()
        while True:
            try:
                answer = await self.client.get_records(
                    ShardIterator=iterator, Limit=self.settings.limit
                )
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code in THROTTLED:
                    self.counters.throttled += 1
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    log.debug("shard %s throttled; retrying in %.1f s", self.shard_id, backoff)
                    await asyncio.sleep(backoff)
                    continue
                if code == "ExpiredIteratorException":
                    self.counters.expired_iterators += 1
                else:
                    log.warning("shard %s: GetRecords failed: %s", self.shard_id, exc)
                    await asyncio.sleep(backoff)
                iterator = await self._iterator()
                continue
            except BotoCoreError as exc:
                log.warning("shard %s: GetRecords failed: %s", self.shard_id, exc)
                await asyncio.sleep(backoff)
                iterator = await self._iterator()
                continue
            backoff = self.settings.poll_seconds
            self.counters.get_records += 1
            self.counters.millis_behind_latest[self.shard_id] = answer.get("MillisBehindLatest", 0)
            records = answer.get("Records", [])
            if records:
                await self._put(records)
            iterator = answer.get("NextShardIterator")
            if iterator is None:
                self.tracker.ended(self.shard_id)
                log.info("shard %s finished", self.shard_id)
                return
            behind = answer.get("MillisBehindLatest", 0) > 0 or len(records) >= self.settings.limit
            # Kinesis allows 5 reads a second per shard: a shard that is behind reads at that pace.
            await asyncio.sleep(self.settings.poll_seconds / 5 if behind else backoff)

    async def _iterator(self) -> str:
        """An iterator at the current position, retried (with backoff) until one is given."""
        backoff = self.settings.poll_seconds
        request: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if self.position not in START_POSITIONS:
            request |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": self.position,
            }
        else:
            request["ShardIteratorType"] = self.position
            if self.position == "AT_TIMESTAMP":
                request["Timestamp"] = self.settings.start_timestamp or 0
        while True:
            try:
                answer = await self.client.get_shard_iterator(**request)
                return str(answer["ShardIterator"])
            except ClientError as exc:
                if exc.response["Error"]["Code"] in THROTTLED:
                    self.counters.throttled += 1
                else:
                    log.warning("shard %s: GetShardIterator failed: %s", self.shard_id, exc)
            except BotoCoreError as exc:
                log.warning("shard %s: GetShardIterator failed: %s", self.shard_id, exc)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(backoff)

    async def _put(self, records: list[dict[str, Any]]) -> None:
        """Put one GetRecords answer, at the arrival time of its oldest record, waiting for
        room in the log as long as it takes."""
        arrivals = [_arrival_ms(record["ApproximateArrivalTimestamp"]) for record in records]
        envelopes = [
            wrap(
                self.shard_id,
                record["PartitionKey"],
                record["SequenceNumber"],
                arrival,
                record["Data"],
            )
            for record, arrival in zip(records, arrivals, strict=True)
        ]
        oldest = min(arrivals)
        start = 0
        while start < len(envelopes):
            rest = envelopes[start:] if start else envelopes
            first_seq, taken = await self.stream.put(rest, arrival_ms=oldest)
            if taken == 0:
                await self.stream.wait_for_room(len(rest[0]))
                continue
            start += taken
            last = records[start - 1]["SequenceNumber"]
            self.tracker.put(self.shard_id, first_seq + taken - 1, last)
            self.position = last
        self.counters.records += len(records)
        self.counters.bytes += sum(len(record["Data"]) for record in records)


def _arrival_ms(value: datetime | float) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value * 1000)
