"""Which leases to take: the Kinesis Client Library's rule, as a pure function.

Each live worker should hold about as many unfinished leases as the others. A worker below its
share takes expired or unowned leases first; when there are none, it steals one lease from the
most loaded worker if that one holds more than the share.
"""

from __future__ import annotations

import math
from collections import Counter

from firehose.sources.leases import Lease
from firehose.sources.positions import SHARD_END


def leases_to_take(leases: list[Lease], me: str, expired: set[str]) -> list[Lease]:
    """`expired` holds the shard ids whose lease has not been renewed within the lease time."""
    active = [lease for lease in leases if lease.checkpoint != SHARD_END]
    free = [lease for lease in active if lease.owner is None or lease.shard_id in expired]
    free = [lease for lease in free if lease.owner != me]
    held = Counter(
        lease.owner for lease in active if lease.owner is not None and lease.shard_id not in expired
    )
    workers = set(held) | {me}
    target = math.ceil(len(active) / len(workers)) if active else 0
    need = target - held[me]
    if need <= 0:
        return []
    if free:
        return free[:need]
    busiest, count = max(((w, n) for w, n in held.items() if w != me), key=lambda x: x[1],
                         default=(None, 0))  # fmt: skip
    if busiest is None or count <= target:
        return []
    return [next(lease for lease in active if lease.owner == busiest)][:1]
