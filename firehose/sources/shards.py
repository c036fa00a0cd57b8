"""A data stream's shards, listed page by page, with the lineage resharding leaves behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 1000


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parents: tuple[str, ...]  # ParentShardId and AdjacentParentShardId (a merge has both)
    closed: bool  # its range has an end: a split or merge closed it


async def list_shards(client: Any, stream_name: str, page_size: int = PAGE_SIZE) -> list[Shard]:
    """Every shard of the stream: ListShards, following NextToken."""
    shards: list[Shard] = []
    request: dict[str, Any] = {"StreamName": stream_name, "MaxResults": page_size}
    while True:
        page = await client.list_shards(**request)
        for item in page.get("Shards", []):
            parents = tuple(
                shard_id
                for shard_id in (item.get("ParentShardId"), item.get("AdjacentParentShardId"))
                if shard_id
            )
            ending = item.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
            shards.append(Shard(item["ShardId"], parents, ending is not None))
        token = page.get("NextToken")
        if not token:
            return shards
        request = {"NextToken": token, "MaxResults": page_size}
