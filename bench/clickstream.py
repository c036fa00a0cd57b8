"""Realistic clickstream records and the PutRecordBatch bodies built from them, once per run."""

from __future__ import annotations

import binascii
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

STREAM = "bench-clicks"
RECORDS_PER_BODY = 500
# 48 bodies are ~8 MiB of requests. A record comes back only every ~6 MiB of data, far beyond
# gzip's 32 KiB window, so the compression ratio is that of fresh data.
POOL_BODIES = 48
SEED = 20260101

EVENTS = ("page_view", "click", "add_to_cart", "search", "checkout", "scroll", "video_play")
PAGES = ("/", "/cart", "/checkout", "/account/orders", "/deals", "/help/returns")
CATEGORIES = ("shoes", "outdoor", "kitchen", "books", "toys", "garden", "audio", "laptops")
WORDS = ("red", "running", "wireless", "kids", "organic", "usb-c", "winter", "gift", "sale", "xl")
COUNTRIES = ("US", "DE", "GB", "FR", "BR", "IN", "JP", "CA", "NL", "ES")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile",
    "ShopApp/5.12.0 (iOS 17.4; iPhone15,2)",
    "ShopApp/5.11.3 (Android 13; SM-S911B)",
)
EPOCH_MS = 1_767_225_600_000  # 2026-01-01: fixed, so that every process builds the same pool


@dataclass(frozen=True)
class Body:
    """One PutRecordBatch request body, with the decoded size of each of its records."""

    payload: bytes
    lengths: tuple[int, ...]
    data_bytes: int


def _url(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"/p/{rng.randrange(100_000, 1_000_000)}"
    if kind == 1:
        return f"/c/{rng.choice(CATEGORIES)}?page={rng.randrange(1, 20)}"
    if kind == 2:
        return f"/search?q={rng.choice(WORDS)}+{rng.choice(WORDS)}"
    return rng.choice(PAGES)


def clickstream_record(rng: random.Random, seq: int) -> bytes:
    """One newline-terminated JSON event of 210-300 bytes (~257 on average)."""
    octets = (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
    event = {
        "id": f"{rng.getrandbits(64):016x}",
        "ts": EPOCH_MS + seq * 7 + rng.randrange(7),
        "type": rng.choice(EVENTS),
        "user": f"u{rng.randrange(2_000_000):07d}",
        "sess": f"{rng.getrandbits(32):08x}",
        "url": _url(rng),
        "ua": rng.choice(USER_AGENTS),
        "ip": ".".join(map(str, octets)),
        "geo": rng.choice(COUNTRIES),
        "dur_ms": rng.randrange(5, 30_000),
        "price": round(rng.uniform(1, 500), 2) if rng.random() < 0.3 else None,
    }
    return orjson.dumps(event) + b"\n"


def build_pool(seed: int = SEED, size: int = POOL_BODIES) -> list[Body]:
    """The request bodies every producer cycles through; the same for a given seed."""
    rng = random.Random(seed)
    pool = []
    for index in range(size):
        first = index * RECORDS_PER_BODY
        records = [clickstream_record(rng, first + i) for i in range(RECORDS_PER_BODY)]
        items = [{"Data": binascii.b2a_base64(r, newline=False).decode()} for r in records]
        payload = orjson.dumps({"DeliveryStreamName": STREAM, "Records": items})
        lengths = tuple(map(len, records))
        pool.append(Body(payload, lengths, sum(lengths)))
    return pool


def pool_digest(pool: Sequence[Body]) -> int:
    digest = 0
    for body in pool:
        digest = zlib.crc32(body.payload, digest)
    return digest
