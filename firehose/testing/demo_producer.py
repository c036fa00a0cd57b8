"""The demo producer of the docker-compose stack: clickstream JSON into a Kinesis data stream.

Creates the stream if it is missing, then writes `--rate` records a second with `PutRecords`
until stopped. Uses botocore (the service's own dependency), so the service image runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
import uuid
from typing import Any

import botocore.session

EVENTS = ("page_view", "click", "add_to_cart", "search", "checkout")
PAGES = ("/", "/cart", "/checkout", "/deals", "/p/123456", "/search?q=shoes")


def click(rng: random.Random) -> bytes:
    event = {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        "ts": int(time.time() * 1000),
        "event": rng.choice(EVENTS),
        "page": rng.choice(PAGES),
        "user": f"u{rng.randrange(10_000)}",
        "country": rng.choice(("US", "DE", "GB", "FR", "BR", "JP")),
    }
    return json.dumps(event).encode() + b"\n"


def kinesis_client() -> Any:
    """A Kinesis client from the standard variables (AWS_ENDPOINT_URL_KINESIS, AWS_*)."""
    return botocore.session.get_session().create_client("kinesis")


def ensure_stream(client: Any, name: str, shards: int) -> None:
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", default="clickstream")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--rate", type=int, default=50, help="records per second")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    args = parser.parse_args()
    client = kinesis_client()
    ensure_stream(client, args.stream, args.shards)
    rng = random.Random()
    sent = 0
    while not args.count or sent < args.count:
        batch = [
            {"Data": click(rng), "PartitionKey": f"u{rng.randrange(10_000)}"}
            for _ in range(min(args.rate, 500))
        ]
        answer = client.put_records(StreamName=args.stream, Records=batch)
        sent += len(batch) - answer["FailedRecordCount"]
        print(f"sent {sent} records to {args.stream}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
