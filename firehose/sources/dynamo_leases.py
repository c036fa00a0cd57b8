"""Shard leases in a DynamoDB table shared by the instances reading one data stream, in the
Kinesis Client Library's item layout (leaseKey, leaseOwner, leaseCounter, checkpoint, …) so
its tools can read the table. Conditional writes on leaseCounter decide every race."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import ClientError

from firehose.sources.leases import Lease

log = logging.getLogger(__name__)

_CONFLICT = "ConditionalCheckFailedException"


class DynamoLeaseStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    async def prepare(self) -> None:
        """Create the table if missing (on demand capacity), then wait until it is active."""
        try:
            await self.client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            log.info("created lease table %s", self.table)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
        for _ in range(600):
            description = await self.client.describe_table(TableName=self.table)
            if description["Table"]["TableStatus"] == "ACTIVE":
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"lease table {self.table} did not become active")

    async def leases(self) -> list[Lease]:
        leases: list[Lease] = []
        start: dict[str, Any] | None = None
        while True:
            page = await self.client.scan(
                TableName=self.table,
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            leases += [_lease(item) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return leases

    async def create(self, lease: Lease) -> None:
        item: dict[str, Any] = {
            "leaseKey": {"S": lease.shard_id},
            "leaseCounter": {"N": "0"},
            "checkpoint": {"S": lease.checkpoint},
            "checkpointSubSequenceNumber": {"N": "0"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
        }
        if lease.parents:
            item["parentShardId"] = {"SS": list(lease.parents)}
        try:
            await self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(leaseKey)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != _CONFLICT:
                raise

    async def take(self, lease: Lease, owner: str) -> Lease | None:
        return await self._update(
            lease,
            "SET leaseOwner = :owner, leaseCounter = :next ADD ownerSwitchesSinceCheckpoint :one",
            {":owner": {"S": owner}, ":one": {"N": "1"}},
        )

    async def renew(self, lease: Lease) -> Lease | None:
        return await self._update(lease, "SET leaseCounter = :next", {}, owned=True)

    async def checkpoint(self, lease: Lease, checkpoint: str) -> Lease | None:
        return await self._update(
            lease,
            "SET leaseCounter = :next, checkpoint = :checkpoint, "
            "ownerSwitchesSinceCheckpoint = :zero",
            {":checkpoint": {"S": checkpoint}, ":zero": {"N": "0"}},
            owned=True,
        )

    async def release(self, lease: Lease) -> None:
        await self._update(lease, "SET leaseCounter = :next REMOVE leaseOwner", {}, owned=True)

    async def close(self) -> None:
        pass

    async def _update(
        self, lease: Lease, expression: str, values: dict[str, Any], *, owned: bool = False
    ) -> Lease | None:
        condition = "leaseCounter = :counter"
        values = {
            **values,
            ":counter": {"N": str(lease.counter)},
            ":next": {"N": str(lease.counter + 1)},
        }
        if owned:
            condition += " AND leaseOwner = :me"
            values[":me"] = {"S": lease.owner or ""}
        try:
            answer = await self.client.update_item(
                TableName=self.table,
                Key={"leaseKey": {"S": lease.shard_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONFLICT:
                return None
            raise
        return _lease(answer["Attributes"])


def _lease(item: dict[str, Any]) -> Lease:
    owner = item.get("leaseOwner", {}).get("S")
    return Lease(
        shard_id=item["leaseKey"]["S"],
        checkpoint=item.get("checkpoint", {}).get("S", "TRIM_HORIZON"),
        parents=tuple(sorted(item.get("parentShardId", {}).get("SS", []))),
        owner=owner,
        counter=int(item.get("leaseCounter", {}).get("N", "0")),
    )
