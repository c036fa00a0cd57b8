"""Firehose's error records: the JSON object written for each record given up on.

What an error record holds depends on where the record failed, its error-output-type. Every
type says how many attempts were made, when the record arrived, why the last attempt failed,
when it ended and the record itself (`rawData`, base64); each type then adds what identifies the
record to whoever failed it (a Lambda ARN, a document id, an event id, …). Two spellings are
Firehose's own and kept on purpose: `format-conversion-failed` says `lastErrorCode` and
`lastErrorMessage`, and `subSequenceNumber`, where the HTTP endpoint and Splunk types say
`subsequenceNumber`; Splunk's `EventId` starts with a capital E.

`ERROR_RECORD_KEYS` is the one table of these shapes: keys in the order written. Values come
from the failed record (`RECORD_VALUES`) or from `FailedRecord.details` (the rest: null when a
stage did not give them, left out when `OPTIONAL_KEYS` says so). Members of `details` are then
merged in, overriding a value derived from the record and adding keys no type lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pybase64

from firehose.destination import FailedRecord

_COMMON_START = ("attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage")
_COMMON = (*_COMMON_START, "attemptEndingTimestamp", "rawData")

ERROR_RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "processing-failed": (*_COMMON, "lambdaArn"),
    "decompression-failed": _COMMON,
    "partitioning-failed": _COMMON,
    "format-conversion-failed": (
        "attemptsMade",
        "arrivalTimestamp",
        "lastErrorCode",
        "lastErrorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "sequenceNumber",
        "subSequenceNumber",
        "dataCatalogTable",
    ),
    "http-endpoint-failed": (*_COMMON, "subsequenceNumber", "dataId", "httpEndpoint"),
    "AmazonOpenSearchService-failed": (
        *_COMMON_START,
        "attemptEndingTimestamp",
        "esDocumentId",
        "esIndexName",
        "esTypeName",
        "rawData",
    ),
    "splunk-failed": (*_COMMON, "EventId", "subsequenceNumber"),
}
# A type this table does not know (a new destination's) gets the keys every type has.
DEFAULT_KEYS = _COMMON
# Written only when `details` gives them: Lambda ARNs exist only for records a Lambda failed.
OPTIONAL_KEYS = frozenset({"lambdaArn"})


def _record_id(failure: FailedRecord) -> str:
    return f"{failure.record.seq}.{failure.record.sub_seq}"


# How each key not taken from `details` is found: (failure, attempts, now in epoch ms) -> value.
RECORD_VALUES: dict[str, Callable[[FailedRecord, int, int], Any]] = {
    "attemptsMade": lambda failure, attempts, now: failure.details.get("attemptsMade", attempts),
    "arrivalTimestamp": lambda failure, attempts, now: failure.record.arrival_ms,
    "errorCode": lambda failure, attempts, now: failure.error_code,
    "errorMessage": lambda failure, attempts, now: failure.error_message,
    "lastErrorCode": lambda failure, attempts, now: failure.error_code,
    "lastErrorMessage": lambda failure, attempts, now: failure.error_message,
    "attemptEndingTimestamp": lambda failure, attempts, now: now,
    "rawData": lambda failure, attempts, now: pybase64.b64encode(failure.record.data).decode(),
    "sequenceNumber": lambda failure, attempts, now: str(failure.record.seq),
    "subSequenceNumber": lambda failure, attempts, now: failure.record.sub_seq,
    "subsequenceNumber": lambda failure, attempts, now: failure.record.sub_seq,
    "dataId": lambda failure, attempts, now: _record_id(failure),
    "EventId": lambda failure, attempts, now: _record_id(failure),
}


def error_record(failure: FailedRecord, *, attempts: int, now_ms: int) -> dict[str, Any]:
    """The error record of one failure, keys in Firehose's order for its output type."""
    details = failure.details
    record: dict[str, Any] = {}
    for key in ERROR_RECORD_KEYS.get(failure.output_type, DEFAULT_KEYS):
        value_of = RECORD_VALUES.get(key)
        if value_of is not None:
            record[key] = value_of(failure, attempts, now_ms)
        elif key in details or key not in OPTIONAL_KEYS:
            record[key] = details.get(key)
    record.update(details)
    return record


def error_lines(failures: Sequence[FailedRecord], *, attempts: int, now_ms: int) -> bytes:
    """The error records of `failures`, one JSON object per line."""
    # Stages may put any value in details; one that JSON cannot hold is written as its str().
    return b"".join(
        orjson.dumps(
            error_record(failure, attempts=attempts, now_ms=now_ms),
            default=str,
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for failure in failures
    )
