"""The HTTP endpoint's request body, built from pre-encoded pieces instead of a dict per record.

`{"requestId": "<uuid>", "timestamp": <epoch ms>, "records": [{"data": "<base64>"}, …]}`: the
records part is encoded once per batch and reused by every retry; only the head (which carries
the attempt's timestamp) is new each time.
"""

from __future__ import annotations

from itertools import accumulate

import pybase64

from firehose.batch import Batch
from firehose.compression import get_codec

_OPEN = b'{"data":"'
_BETWEEN = b'"},{"data":"'
_CLOSE = b'"}'
_gzip = get_codec("GZIP").compress


def encode_records(batch: Batch) -> bytes:
    """The members of `records`, comma separated: base64 needs no JSON escaping."""
    pieces: list[bytes] = []
    for run in batch.runs:
        ends = list(accumulate(run.lengths))
        starts = [0, *ends[:-1]]
        # map() keeps the per-record loop in C: a third faster than a Python loop.
        pieces += map(pybase64.b64encode, map(run.data.__getitem__, map(slice, starts, ends)))
    if not pieces:
        return b""
    pieces[0] = _OPEN + pieces[0]
    pieces[-1] += _CLOSE
    return _BETWEEN.join(pieces)


def request_body(records: bytes, request_id: str, timestamp_ms: int, *, gzip: bool) -> bytes:
    """The whole body around `records` (from `encode_records`), gzip'd when asked."""
    head = f'{{"requestId":"{request_id}","timestamp":{timestamp_ms},"records":['.encode()
    chunks = [head, records, b"]}"]
    return _gzip(chunks, "") if gzip else b"".join(chunks)
