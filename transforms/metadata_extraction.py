"""`MetadataExtraction`: runs the `MetadataExtractionQuery` (jq, through the real jq library) on
each JSON record to get its `!{partitionKeyFromQuery:…}` keys for dynamic partitioning.

The query must give one object whose values are strings, numbers or booleans; numbers and
booleans become strings as jq 1.6's `tostring` writes them (`1`, `1.5`, `true`). A record that is
not JSON, a query that fails, or any other result goes to the error output as
`partitioning-failed` with the error code `DynamicPartitioning.MetadataExtractionFailed`.

A query that only picks fields (`{k: .a.b}`) runs on a fast path (transforms/field_pick.py) that
falls back to jq for any record it cannot answer exactly as jq would.

Records are handed to jq many at a time (transforms/jq_batch.py), running the query alone; a
record whose result is one object of strings takes it as its keys. Any other result (numbers to
render, an error, not one object) comes from the whole program run on that record alone, so the
keys and errors are those of one record at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jq

from firehose.jq_query import read_object_query
from firehose.processing_config import ProcessorConfig
from transforms.field_pick import FieldPicker
from transforms.jq_batch import BatchedQuery
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import failure

OUTPUT_TYPE = "partitioning-failed"
EXTRACTION_FAILED = "DynamicPartitioning.MetadataExtractionFailed"

# Piped after the user's query, so the checks and `tostring` are jq's own. `. * 1` turns a number
# into a double first: the jq library keeps number literals as written (`1.0`, `3.0e2`) where
# jq 1.6, which Firehose runs, writes `1` and `300`.
_AS_KEYS = r"""
if type != "object" then error("the query gave \(type), not an object")
else . as $object | reduce keys_unsorted[] as $key ({}; . + {($key): ($object[$key]
  | if type == "string" then .
    elif type == "number" then . * 1 | tostring
    elif type == "boolean" then tostring
    elif type == "null" then error("\($key | tojson) is null: missing from the record?")
    else error("\($key | tojson) is an \(type), not a string, number or boolean")
    end)})
end
"""


class MetadataExtraction:
    type = "MetadataExtraction"

    def __init__(self, query: str, *, fast_path: bool = True) -> None:
        self.query = query
        # The newline ends a trailing `# comment` in the query before the closing parenthesis.
        self._program: Any = jq.compile(f"({query}\n) | {_AS_KEYS}")
        self._batched = BatchedQuery(query)
        shape = read_object_query(query)
        self.picker = (
            FieldPicker(shape) if fast_path and shape and shape.only_picks_fields else None
        )

    def keys(self, data: bytes | memoryview) -> dict[str, str]:
        """The partition keys of one record; ValueError saying why there are none."""
        if self.picker is not None:
            keys = self.picker.keys(data)
            if keys is not None:
                return keys
        return self.jq_keys(data)

    def jq_keys(self, data: bytes | memoryview) -> dict[str, str]:
        """The partition keys of one record as jq gives them; ValueError saying why not."""
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"the record is not UTF-8 JSON: {exc}") from None
        try:
            results = self._program.input_text(text).all()
        except ValueError as exc:
            reason = " ".join(str(exc).split())
            if reason.startswith("parse error"):
                raise ValueError(f"the record is not JSON: {reason}") from None
            raise ValueError(f"jq: {reason}") from None
        if len(results) != 1:
            raise ValueError(
                f"the query gave {len(results)} results for the record; it must give one object"
            )
        keys: dict[str, str] = results[0]
        return keys

    def keys_of(self, records: Sequence[bytes | memoryview]) -> list[dict[str, str] | ValueError]:
        """The partition keys of each record, or the ValueError saying why it has none."""
        picker = self.picker
        picked = [picker.keys(data) for data in records] if picker else [None] * len(records)
        for_jq = [data for data, keys in zip(records, picked, strict=True) if keys is None]
        outputs = iter(self._batched.outputs(for_jq))
        results: list[dict[str, str] | ValueError] = []
        for data, keys in zip(records, picked, strict=True):
            if keys is None:
                keys = _string_keys(next(outputs))
            if keys is None:
                try:
                    keys = self.jq_keys(data)
                except ValueError as exc:
                    results.append(exc)
                    continue
            results.append(keys)
        return results

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        output = ProcessorOutput()
        keys_of = self.keys_of([record.data for record in records])
        for record, keys in zip(records, keys_of, strict=True):
            if isinstance(keys, ValueError):
                output.failed.append(failure(record, OUTPUT_TYPE, EXTRACTION_FAILED, str(keys)))
            else:
                record.query_keys = keys
                output.records.append(record)
        return output

    async def close(self) -> None:
        pass


def _string_keys(outputs: list[Any] | None) -> dict[str, str] | None:
    """The keys when the query gave one object whose values are all strings (what the whole
    program would give unchanged), else None."""
    if outputs is None or len(outputs) != 1:
        return None
    keys = outputs[0]
    if type(keys) is not dict:
        return None
    for value in keys.values():
        if type(value) is not str:
            return None
    return keys


def build(config: ProcessorConfig, context: ProcessingContext) -> MetadataExtraction:
    # JsonParsingEngine has one value, JQ-1.6, checked by the config.
    query: str = config.values()["MetadataExtractionQuery"]
    return MetadataExtraction(query)
