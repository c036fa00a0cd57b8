"""Transform functions for the Lambda processor's tests, each written as a Lambda handler."""

from __future__ import annotations

import asyncio
import base64
import ctypes
import os
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import (
    KinesisFirehoseDataTransformationRecord,
    KinesisFirehoseDataTransformationRecordMetadata,
    KinesisFirehoseDataTransformationResponse,
    KinesisFirehoseEvent,
)

Event = dict[str, Any]
NOT_CALLABLE = 3


def _answer(record: Event, result: str = "Ok", data: bytes | None = None) -> dict[str, Any]:
    raw = base64.b64decode(record["data"]) if data is None else data
    return {
        "recordId": record["recordId"],
        "result": result,
        "data": base64.b64encode(raw).decode(),
    }


def identity(event: Event, context: Any) -> dict[str, Any]:
    return {"records": [_answer(r) for r in event["records"]]}


def upper(event: Event, context: Any) -> dict[str, Any]:
    return {
        "records": [_answer(r, data=base64.b64decode(r["data"]).upper()) for r in event["records"]]
    }


def drop_odd(event: Event, context: Any) -> dict[str, Any]:
    """Drops records whose data is an odd number."""
    return {
        "records": [
            _answer(r, "Dropped" if int(base64.b64decode(r["data"])) % 2 else "Ok")
            for r in event["records"]
        ]
    }


def fail_bad(event: Event, context: Any) -> dict[str, Any]:
    """ProcessingFailed for records that start with 'bad'."""
    return {
        "records": [
            _answer(
                r, "ProcessingFailed" if base64.b64decode(r["data"]).startswith(b"bad") else "Ok"
            )
            for r in event["records"]
        ]
    }


def raise_error(event: Event, context: Any) -> dict[str, Any]:
    raise ValueError("no thanks")


def sleep_forever(event: Event, context: Any) -> dict[str, Any]:
    while True:
        time.sleep(1)


def exit_hard(event: Event, context: Any) -> dict[str, Any]:
    os._exit(3)


def segfault(event: Event, context: Any) -> dict[str, Any]:
    ctypes.string_at(0)
    return {}


def allocate_forever(event: Event, context: Any) -> dict[str, Any]:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def exit_when_told(event: Event, context: Any) -> dict[str, Any]:
    """Crashes the worker on a record saying 'crash', else answers as identity."""
    if any(base64.b64decode(r["data"]) == b"crash" for r in event["records"]):
        os._exit(1)
    return identity(event, context)


def pid(event: Event, context: Any) -> dict[str, Any]:
    """Answers with the worker's process id, to tell workers apart."""
    return {"records": [_answer(r, data=str(os.getpid()).encode()) for r in event["records"]]}


def slow_first(event: Event, context: Any) -> dict[str, Any]:
    """The first record's data is how long to sleep (seconds), so calls finish out of order."""
    time.sleep(float(base64.b64decode(event["records"][0]["data"]).split(b":")[0]))
    return identity(event, context)


# Contract breaks, one per code.
def not_json(event: Event, context: Any) -> str:
    return "this is a string, not the model"


def no_records(event: Event, context: Any) -> dict[str, Any]:
    return {"records": "nope"}


def missing_first(event: Event, context: Any) -> dict[str, Any]:
    return {"records": [_answer(r) for r in event["records"][1:]]}


def duplicate_first(event: Event, context: Any) -> dict[str, Any]:
    answers = [_answer(r) for r in event["records"]]
    return {"records": [answers[0], *answers]}


def bad_result_first(event: Event, context: Any) -> dict[str, Any]:
    answers = [_answer(r) for r in event["records"]]
    answers[0]["result"] = "Fine"
    return {"records": answers}


def no_data_first(event: Event, context: Any) -> dict[str, Any]:
    answers = [_answer(r) for r in event["records"]]
    del answers[0]["data"]
    return {"records": answers}


def bad_base64_first(event: Event, context: Any) -> dict[str, Any]:
    answers = [_answer(r) for r in event["records"]]
    answers[0]["data"] = "not base64!"
    return {"records": answers}


def unknown_id(event: Event, context: Any) -> dict[str, Any]:
    answers = [_answer(r) for r in event["records"]]
    answers[0]["recordId"] = "not-an-id-of-the-event"
    return {"records": answers}


def unserialisable(event: Event, context: Any) -> object:
    return {"records": [object()]}


def huge_response(event: Event, context: Any) -> dict[str, Any]:
    return {"records": [_answer(r, data=b"x" * (5 * 1024 * 1024)) for r in event["records"]]}


def partition_keys(event: Event, context: Any) -> dict[str, Any]:
    answers = []
    for record in event["records"]:
        answer = _answer(record)
        answer["metadata"] = {
            "partitionKeys": {"customer": base64.b64decode(record["data"]).decode()}
        }
        answers.append(answer)
    return {"records": answers}


def echo_event(event: Event, context: Any) -> dict[str, Any]:
    """Answers each record with the whole event and context as JSON (to check what was sent)."""
    import json

    seen = {
        "event": event,
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }
    return {"records": [_answer(r, data=json.dumps(seen).encode()) for r in event["records"]]}


async def async_upper(event: Event, context: Any) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return upper(event, context)


def powertools(event: Event, context: Any) -> KinesisFirehoseDataTransformationResponse:
    """Written as Powertools' docs show, returning the response object itself."""
    firehose_event = KinesisFirehoseEvent(event)
    response = KinesisFirehoseDataTransformationResponse()
    for record in firehose_event.records:
        text = record.data_as_text
        if text == "drop":
            response.add_record(record.build_data_transformation_response(result="Dropped"))
            continue
        metadata = KinesisFirehoseDataTransformationRecordMetadata(
            partition_keys={"len": str(len(text))}
        )
        response.add_record(
            KinesisFirehoseDataTransformationRecord(
                record_id=record.record_id,
                data=base64.b64encode(text[::-1].encode()).decode(),
                metadata=metadata,
            )
        )
    return response


def powertools_asdict(event: Event, context: Any) -> dict[str, Any]:
    """The same, returning `.asdict()` as Powertools' own example does."""
    return powertools(event, context).asdict()


def slow_fail_bad(event: Event, context: Any) -> dict[str, Any]:
    """fail_bad, after a pause: a SIGKILL then lands while transforms run."""
    time.sleep(0.3)
    return fail_bad(event, context)
