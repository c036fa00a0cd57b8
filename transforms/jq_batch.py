"""A jq query run over many JSON records in one call: jq reads a stream of JSON texts, so records
joined by newlines cost one call instead of one each, and most of a call's cost is its setup.

Each record must then give its own outputs. The query runs inside `[…]`, so every record gives
exactly one array of its outputs, however many the query yields; and only records that are one
JSON text each (orjson says so) go into a call, so the n-th array is the n-th record's. A record
that is not, or on which jq stops (an error, `halt`), gets no outputs here: its caller runs the
query on it alone, which gives the record's own answer or error, exactly as before. The call then
goes on from the next record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jq
import orjson

# Records per call: the setup is shared, the joined text stays small.
CHUNK = 512
# After a record stopped a call, the next call is this short, then doubles back up to CHUNK: a
# stream of records that all fail does not join the same long chunk again for each of them.
CHUNK_AFTER_STOP = 8


class BatchedQuery:
    """The outputs of one jq query on each of many records."""

    def __init__(self, query: str) -> None:
        # The newline ends a trailing `# comment` in the query before the closing parenthesis.
        self._program: Any = jq.compile(f"[({query}\n)]")

    def outputs(self, records: Sequence[bytes | memoryview]) -> list[list[Any] | None]:
        """Each record's outputs, or None where only a run on the record alone can tell."""
        results: list[list[Any] | None] = [None] * len(records)
        texts = [index for index, data in enumerate(records) if _one_json_text(data)]
        position, size = 0, CHUNK
        while position < len(texts):
            chunk = texts[position : position + size]
            done = self._run(records, chunk, results)
            if done == len(chunk):
                position += done
                size = min(size * 2, CHUNK)
            else:  # chunk[done] stopped the call: its result stays None
                position += done + 1
                size = CHUNK_AFTER_STOP
        return results

    def _run(
        self,
        records: Sequence[bytes | memoryview],
        chunk: list[int],
        results: list[list[Any] | None],
    ) -> int:
        """Run the query on the records `chunk` names; how many got their outputs."""
        text = str(b"\n".join([records[index] for index in chunk]), "utf-8")
        done = 0
        try:
            for outputs in self._program.input_text(text):
                if done == len(chunk):  # more texts than records: trust none of them
                    for index in chunk:
                        results[index] = None
                    return done
                results[chunk[done]] = outputs
                done += 1
        except ValueError:
            pass
        return done


def _one_json_text(data: bytes | memoryview) -> bool:
    """Whether `data` is exactly one JSON text (UTF-8), so that joined it stays one jq input."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True
