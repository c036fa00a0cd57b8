"""The `_bulk` request body of a batch and the reading of its answer, without I/O.

Records that are already single-line JSON objects are sent as they are, as the source line
after their action line: no record is parsed on the way out. Only a record that fails the cheap
shape check is parsed, to tell a pretty-printed object (sent compacted) from one that cannot be
a document (filed at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from firehose.batch import Batch, Record
from firehose.destination import FailedRecord

OUTPUT_TYPE = "AmazonOpenSearchService-failed"
# Per-item statuses worth sending again: the cluster was busy or broken, not the document.
RETRIABLE_STATUS = 429
_OPEN, _CLOSE, _NEWLINE = ord("{"), ord("}"), ord("\n")
# OpenSearch answers `{"took":N,"errors":false,...`: such an answer needs no item-by-item read.
_ALL_TAKEN = re.compile(rb'\s*\{\s*(?:"took"\s*:\s*\d+\s*,\s*)?"errors"\s*:\s*false\b')


@dataclass(slots=True)
class SentDocument:
    """What an action line of the request named: read back when its item failed."""

    record: Record
    document_id: str | None
    index: str


@dataclass
class BulkRequest:
    """A batch as one `_bulk` body; `refused` are records that could not be documents at all."""

    body: bytes
    sent: list[SentDocument] = field(default_factory=list)
    refused: list[FailedRecord] = field(default_factory=list)


class BulkWriter:
    """Builds `_bulk` bodies for one destination section: its index naming, type and ids."""

    def __init__(
        self,
        index_for: Callable[[int], str],
        *,
        type_name: str | None,
        document_ids: bool,
        code_prefix: str,
    ) -> None:
        self.index_for = index_for
        self.type_name = type_name
        self.document_ids = document_ids
        self.code_prefix = code_prefix  # "OS" or "ES": our codes for what never reached it
        self._type_part = b',"_type":' + orjson.dumps(type_name) if type_name else b""
        self._action_heads: dict[str, bytes] = {}

    def document_id(self, object_id: str, record: Record) -> str:
        """Fixed by the batch and the record, so a retry overwrites the document it sent."""
        return f"{object_id}-{record.seq}-{record.sub_seq}"

    def build(self, batch: Batch) -> BulkRequest:
        """The body for `batch`: one index action and one source line per record."""
        parts: list[bytes | memoryview] = []
        request = BulkRequest(b"")
        sent, refused = request.sent, request.refused
        for record, line in _sources(batch):
            index = self.index_for(record.arrival_ms)
            document_id = self.document_id(batch.object_id, record) if self.document_ids else None
            source = line if line is not None else _compacted(record.data)
            if source is None:
                refused.append(self._refusal(record, document_id, index))
                continue
            parts.append(self._action(index, document_id))
            parts.append(source)
            parts.append(b"\n")
            sent.append(SentDocument(record, document_id, index))
        request.body = b"".join(parts)
        return request

    def failures(self, reply: bytes, sent: list[SentDocument]) -> list[FailedRecord] | None:
        """The documents an answer with status 200 did not take; None if it is no bulk answer."""
        if _ALL_TAKEN.match(reply):
            return []
        try:
            answer = orjson.loads(reply)
        except orjson.JSONDecodeError:
            return None
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list) or len(items) != len(sent):
            return None
        if answer.get("errors") is False:
            return []
        failed: list[FailedRecord] = []
        for item, document in zip(items, sent, strict=True):
            result = next(iter(item.values()), None) if isinstance(item, dict) else None
            if not isinstance(result, dict):
                return None
            status = result.get("status")
            if isinstance(status, int) and status < 300:
                continue
            failed.append(self._item_failure(document, result, status))
        return failed

    def _action(self, index: str, document_id: str | None) -> bytes:
        head = self._action_heads.get(index)
        if head is None:
            if len(self._action_heads) > 1024:
                self._action_heads.clear()
            head = b'{"index":{"_index":' + orjson.dumps(index) + self._type_part
            self._action_heads[index] = head
        if document_id is None:
            return head + b"}}\n"
        return b'%s,"_id":"%s"}}\n' % (head, document_id.encode())

    def _item_failure(
        self, document: SentDocument, result: dict[str, Any], status: object
    ) -> FailedRecord:
        error = result.get("error")
        if isinstance(error, dict):
            kind = str(error.get("type") or status)
            message = f"{kind}: {error.get('reason')}"
            cause = error.get("caused_by")
            if isinstance(cause, dict):
                message += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        else:
            kind = str(error or status)
            message = kind
        retriable = not isinstance(status, int) or status == RETRIABLE_STATUS or status >= 500
        document_id = result.get("_id") or document.document_id
        return FailedRecord(
            document.record,
            OUTPUT_TYPE,
            kind,
            f"status {status}, {message}",
            self._details(document_id, result.get("_index") or document.index),
            retriable=retriable,
        )

    def _refusal(self, record: Record, document_id: str | None, index: str) -> FailedRecord:
        return FailedRecord(
            record,
            OUTPUT_TYPE,
            f"{self.code_prefix}.MalformedData",
            "the record is not a JSON object, so it cannot be a document: not sent",
            self._details(document_id, index),
            retriable=False,
        )

    def _details(self, document_id: str | None, index: str) -> dict[str, Any]:
        return {"esDocumentId": document_id, "esIndexName": index, "esTypeName": self.type_name}

    def details_of(self, document: SentDocument) -> dict[str, Any]:
        """The error-record keys of a document, for failures of the whole request."""
        return self._details(document.document_id, document.index)


def _sources(batch: Batch) -> Iterator[tuple[Record, memoryview | None]]:
    """Each record with its source line when it is one JSON object on one line, else None."""
    for run in batch.runs:
        data = bytes(run.data)  # one copy per run: bytes.find scans without slicing
        view = memoryview(data)
        offset = 0
        seqs, sub_seqs, arrivals = run.seqs, run.sub_seqs, run.arrivals
        for position, length in enumerate(run.lengths):
            start, end = offset, offset + length
            offset = end
            record = Record(
                seqs[position] if seqs else run.first_seq + position,
                arrivals[position] if arrivals else run.arrival_ms,
                view[start:end],
                sub_seqs[position] if sub_seqs else 0,
            )
            if end > start and data[end - 1] == _NEWLINE:
                end -= 1
            if (
                end > start
                and data[start] == _OPEN
                and data[end - 1] == _CLOSE
                and data.find(b"\n", start, end) < 0
            ):
                yield record, view[start:end]
            else:
                yield record, None


def _compacted(data: memoryview | bytes) -> bytes | None:
    """A record that parses as one JSON object, on one line; None when it is none."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return orjson.dumps(parsed) if isinstance(parsed, dict) else None
