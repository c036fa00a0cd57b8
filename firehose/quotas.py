"""Direct PUT quotas: records, requests and bytes per second per stream, as token buckets.

Off unless `--quotas` names a default set or a stream's config sets its own (`Quotas:`, ours).
Each bucket holds one second of its rate and refills continuously; a request takes one request
token, and its records take record and byte tokens. What does not fit is throttled: the leading
records that fit are taken, as AWS does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field

from firehose.config_base import _alias, _Model

MIB = 1024 * 1024
# What `StreamQuota.admit` answers for a request over the requests-per-second limit.
REQUEST_REFUSED = -1
QuotaSet = Literal["off", "aws", "aws-small"]


class StreamQuotas(_Model):
    """A stream's own limits (our extension of the stream config); a limit not given takes the
    service's default (`--quotas`), or none when quotas are off."""

    records_per_second: int | None = Field(
        None, ge=1, strict=True, validation_alias=_alias("RecordsPerSecond", "records_per_second")
    )
    requests_per_second: int | None = Field(
        None,
        ge=1,
        strict=True,
        validation_alias=_alias("RequestsPerSecond", "requests_per_second"),
    )
    # At least 1 MiB/s: a full bucket then always holds the largest record (1,000 KiB).
    mib_per_second: float | None = Field(
        None, ge=1, validation_alias=_alias("MiBPerSecond", "mib_per_second")
    )


# AWS's default Direct PUT quotas per stream: us-east-1, us-west-2 and eu-west-1 (`aws`), and
# the other Regions (`aws-small`).
DEFAULTS: dict[str, StreamQuotas] = {
    "aws": StreamQuotas(records_per_second=500_000, requests_per_second=2_000, mib_per_second=5),
    "aws-small": StreamQuotas(
        records_per_second=100_000, requests_per_second=1_000, mib_per_second=1
    ),
}


@dataclass(frozen=True)
class Limits:
    """The limits in force for one stream; None for no limit."""

    records_per_second: int | None
    requests_per_second: int | None
    bytes_per_second: int | None

    @classmethod
    def resolve(cls, own: StreamQuotas | None, default: QuotaSet) -> Limits | None:
        """The stream's own limits over the service's default; None when nothing limits."""
        base = DEFAULTS.get(default)

        def pick(name: str) -> float | None:
            value = getattr(own, name) if own is not None else None
            return getattr(base, name) if value is None and base is not None else value

        records = pick("records_per_second")
        requests = pick("requests_per_second")
        mib = pick("mib_per_second")
        if records is None and requests is None and mib is None:
            return None
        return cls(
            None if records is None else int(records),
            None if requests is None else int(requests),
            None if mib is None else int(mib * MIB),
        )


class TokenBucket:
    """`rate` tokens a second, holding at most one second's worth."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()

    def refill(self, now: float) -> float:
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return self.tokens


class StreamQuota:
    """The buckets of one stream; `admit` is called once per PutRecord(Batch)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._requests = _bucket(limits.requests_per_second)
        self._records = _bucket(limits.records_per_second)
        self._bytes = _bucket(limits.bytes_per_second)

    def admit(self, records: list[bytes], size: int) -> int:
        """How many leading records may be taken now (their tokens are spent), or
        REQUEST_REFUSED when the request limit is spent."""
        now = time.monotonic()
        requests, counted, sized = self._requests, self._records, self._bytes
        if requests is not None and requests.refill(now) < 1:
            return REQUEST_REFUSED
        record_room = len(records) if counted is None else int(counted.refill(now))
        byte_room = size if sized is None else sized.refill(now)
        taken = len(records)
        if taken > record_room or size > byte_room:
            taken, size = 0, 0
            for record in records[:record_room]:
                if size + len(record) > byte_room:
                    break
                size += len(record)
                taken += 1
        if taken == 0:
            return 0
        if requests is not None:
            requests.tokens -= 1
        if counted is not None:
            counted.tokens -= taken
        if sized is not None:
            sized.tokens -= size
        return taken


def _bucket(rate: int | None) -> TokenBucket | None:
    return None if rate is None else TokenBucket(rate)


class _Configured(Protocol):
    @property
    def config(self) -> Any: ...


class QuotaBook:
    """Each stream's quota, resolved from its current config: a stream made or changed through
    the API gets its quota too (a changed config starts with full buckets)."""

    def __init__(self, streams: Mapping[str, _Configured], default: QuotaSet) -> None:
        self._streams = streams
        self._default = default
        self._held: dict[str, tuple[object, StreamQuota | None]] = {}

    def get(self, name: str) -> StreamQuota | None:
        stream = self._streams.get(name)
        if stream is None:
            return None
        config = stream.config
        held = self._held.get(name)
        if held is not None and held[0] is config:
            return held[1]
        limits = Limits.resolve(config.quotas, self._default)
        quota = StreamQuota(limits) if limits is not None and config.type == "DirectPut" else None
        self._held[name] = (config, quota)
        return quota
