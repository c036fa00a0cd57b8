"""Shard leases as the Kinesis Client Library keeps them, and the store for a lone instance.

A lease names the shard (`leaseKey`), its owner, a counter every write bumps (conditional
writes on it make taking, renewing and checkpointing safe between instances), the checkpoint
(a sequence number, `TRIM_HORIZON`/`LATEST`/`AT_TIMESTAMP` before the first, `SHARD_END` when
the shard is finished) and the parent shards that must finish first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from firehose.durable import replace_durably


@dataclass(frozen=True)
class Lease:
    shard_id: str
    checkpoint: str
    parents: tuple[str, ...] = ()
    owner: str | None = None
    counter: int = 0


class LeaseStore(Protocol):
    """Every write is conditional on the lease being as the caller last saw it: a write that
    finds it changed (another instance took it) returns None."""

    async def prepare(self) -> None: ...

    async def leases(self) -> list[Lease]: ...

    async def create(self, lease: Lease) -> None:
        """Add the lease unless one for its shard exists."""

    async def take(self, lease: Lease, owner: str) -> Lease | None: ...

    async def renew(self, lease: Lease) -> Lease | None: ...

    async def checkpoint(self, lease: Lease, checkpoint: str) -> Lease | None: ...

    async def release(self, lease: Lease) -> None: ...

    async def close(self) -> None: ...


class LocalLeaseStore:
    """One instance alone: leases in memory, checkpoints in a JSON file of the data dir,
    replaced atomically. Owners are not kept: the data dir's lock makes this instance the one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._leases: dict[str, Lease] = {}
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        if self.path.exists():
            saved = json.loads(self.path.read_text())
            self._leases = {
                shard_id: Lease(shard_id, item["checkpoint"], tuple(item["parents"]))
                for shard_id, item in saved.items()
            }

    async def leases(self) -> list[Lease]:
        return list(self._leases.values())

    async def create(self, lease: Lease) -> None:
        if lease.shard_id not in self._leases:
            self._leases[lease.shard_id] = lease
            await self._save()

    async def take(self, lease: Lease, owner: str) -> Lease | None:
        return self._write(lease, lambda current: dataclasses.replace(current, owner=owner))

    async def renew(self, lease: Lease) -> Lease | None:
        return self._write(lease, lambda current: current)

    async def checkpoint(self, lease: Lease, checkpoint: str) -> Lease | None:
        updated = self._write(
            lease, lambda current: dataclasses.replace(current, checkpoint=checkpoint)
        )
        if updated is not None:
            await self._save()
        return updated

    async def release(self, lease: Lease) -> None:
        self._write(lease, lambda current: dataclasses.replace(current, owner=None))

    async def close(self) -> None:
        pass

    def _write(self, lease: Lease, change: Callable[[Lease], Lease]) -> Lease | None:
        current = self._leases.get(lease.shard_id)
        if current is None or current.counter != lease.counter:
            return None
        updated = dataclasses.replace(change(current), counter=current.counter + 1)
        self._leases[lease.shard_id] = updated
        return updated

    async def _save(self) -> None:
        data = {
            lease.shard_id: {"checkpoint": lease.checkpoint, "parents": list(lease.parents)}
            for lease in self._leases.values()
        }
        payload = json.dumps(data, indent=1, sort_keys=True).encode()
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(
                None, replace_durably, self.path, payload
            )
