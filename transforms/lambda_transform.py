"""The `Lambda` processor: records through a transform function, with Firehose's contract.

The records of one `process` call are cut into invocations (at most `BufferSizeInMBs` of record
data and Lambda's 6 MB request), which run concurrently, at most `transform_workers` at once.
An invocation that errs, times out or is throttled is tried again `NumberOfRetries` times with
backoff; then all its records go to the error output with the last error's code. A response
that breaks the contract fails only the records it breaks (see `read_response`) and is not
retried: the same function would break it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from firehose.batch import Record, RecordRun
from firehose.destination import FailedRecord
from firehose.processing_config import ProcessorConfig
from firehose.retry import RetryPolicy
from transforms.lambda_contract import (
    _PLAIN_ENTRY,
    PAYLOAD_LIMIT,
    REQUEST_TOO_LARGE,
    Answer,
    EventShape,
    InvokeError,
    Segment,
    SegmentAnswer,
)
from transforms.lambda_handler import FunctionInfo, is_lambda_arn
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput
from transforms.records import records_to_runs

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MIB = 1024 * 1024
# Records handled between two yields to the event loop, so requests keep being answered.
YIELD_EVERY = 2048
# How long to wait before attempt n+1: 0.5 s, doubling, at most 10 s (with jitter).
DEFAULT_RETRY = RetryPolicy(initial_backoff_seconds=0.5, max_backoff_seconds=10.0)
# Placeholder of the length every uuid4 invocation id has, to size events before building them.
_ID_OF_UUID_LENGTH = str(uuid.UUID(int=0))


@runtime_checkable
class SegmentInvoker(Protocol):
    """An invoker that takes records as slices of runs and answers them compactly."""

    async def invoke_segments(
        self, shape: EventShape, invocation_id: str, segments: list[Segment], timeout: float
    ) -> list[SegmentAnswer]: ...


class Invoker(Protocol):
    """One way of running the function: the response body for an event, or InvokeError;
    `invoke_records` builds the event and reads the answer too (where the function runs)."""

    async def invoke(self, payload: bytes, timeout: float) -> bytes: ...

    async def invoke_records(
        self,
        shape: EventShape,
        invocation_id: str,
        items: list[tuple[str, ProcessingRecord]],
        timeout: float,
    ) -> list[Answer]: ...

    async def close(self) -> None: ...


def make_invoker(spec: str, context: ProcessingContext) -> Invoker:
    """A real ARN goes through the Lambda API; a Python callable runs as `transform_mode` says."""
    if is_lambda_arn(spec):
        from transforms.lambda_invoke import AwsLambdaInvoker

        return AwsLambdaInvoker(spec, timeout=context.transform_timeout_seconds)
    info = FunctionInfo.of(spec, context.stream_arn, context.region, context.transform_memory_mib)
    if context.transform_mode == "process":
        from transforms.workers import WorkerPool

        return WorkerPool(
            spec,
            info,
            size=context.transform_workers,
            memory_mib=context.transform_memory_mib,
            start_timeout=context.transform_timeout_seconds,
        )
    from transforms.local_invoke import InlineInvoker, ThreadInvoker

    if context.transform_mode == "thread":
        return ThreadInvoker(spec, info)
    if context.transform_mode == "inline":
        return InlineInvoker(spec, info)
    raise ValueError(f"transform mode must be process, thread or inline: {context.transform_mode}")


class LambdaProcessor:
    """Firehose's `Lambda` processor; `close()` stops its workers or closes its Lambda client."""

    type = "Lambda"

    def __init__(
        self,
        config: ProcessorConfig,
        context: ProcessingContext,
        *,
        invoker: Invoker | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        values = config.values()
        self.lambda_arn: str = values["LambdaArn"]
        self.retries: int = values["NumberOfRetries"]
        self.buffer_bytes = int(values["BufferSizeInMBs"] * MIB)
        # When to call: the stream's concern (it decides when `process` runs), kept for it.
        self.buffer_interval_seconds: int = values["BufferIntervalInSeconds"]
        self._timeout = context.transform_timeout_seconds
        self._shape = EventShape.of(context)
        self._envelope = self._shape.envelope_size(_ID_OF_UUID_LENGTH)
        self._invoker = invoker if invoker is not None else make_invoker(self.lambda_arn, context)
        self._retry = retry
        self._running = asyncio.Semaphore(max(1, context.transform_workers))

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        # Record ids are opaque to the function and unique within an event: the position.
        ids = list(map(str, range(len(records))))
        outcome: list[ProcessingRecord | FailedRecord | None] = [None] * len(records)
        invocations: list[list[int]] = []
        current: list[int] = []
        data_bytes = size = 0
        for i, record in enumerate(records):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a large read must not hold the API's loop
            entry = self._shape.entry_size(ids[i], record)
            if self._envelope + entry > PAYLOAD_LIMIT:
                error = InvokeError(
                    REQUEST_TOO_LARGE, f"Its event would be {self._envelope + entry} bytes."
                )
                outcome[i] = self._failed(record, error.code, error.message, 0)
                continue
            if current and (
                data_bytes + len(record.data) > self.buffer_bytes
                or size + 1 + entry > PAYLOAD_LIMIT
            ):
                invocations.append(current)
                current = []
            if not current:
                data_bytes, size = 0, self._envelope
            else:
                size += 1  # the comma between entries
            current.append(i)
            data_bytes += len(record.data)
            size += entry
        if current:
            invocations.append(current)
        await asyncio.gather(*(self._invoke(part, records, ids, outcome) for part in invocations))
        output = ProcessorOutput()
        for result in outcome:
            if isinstance(result, FailedRecord):
                output.failed.append(result)
            elif result is not None:
                output.records.append(result)
        return output

    async def _attempts(
        self, records: int, call: Callable[[], Awaitable[_T]]
    ) -> tuple[_T | InvokeError, int]:
        """One invocation with its retries: its answer, or the last error; and the attempts."""
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self._running:
                    return await call(), attempts
            except InvokeError as error:
                if error.retryable and attempts <= self.retries:
                    wait = self._retry.backoff(attempts) * random.uniform(0.5, 1.0)
                    log.warning(
                        "transform %s: attempt %d of %d failed (%s), again in %.1f s",
                        self.lambda_arn,
                        attempts,
                        self.retries + 1,
                        error,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    continue
                log.warning(
                    "transform %s: %d records to the error output after %d attempts: %s",
                    self.lambda_arn,
                    records,
                    attempts,
                    error,
                )
                return error, attempts

    async def _invoke(
        self,
        part: list[int],
        records: list[ProcessingRecord],
        ids: list[str],
        outcome: list[ProcessingRecord | FailedRecord | None],
    ) -> None:
        """One invocation with its retries; fills `outcome` for its records."""

        def call() -> Awaitable[list[Answer]]:
            items = [(ids[i], records[i]) for i in part]
            return self._invoker.invoke_records(
                self._shape, str(uuid.uuid4()), items, self._timeout
            )

        answers, attempts = await self._attempts(len(part), call)
        if isinstance(answers, InvokeError):
            for i in part:
                outcome[i] = self._failed(records[i], answers.code, answers.message, attempts)
            return
        for i, answer in zip(part, answers, strict=True):
            outcome[i] = self._outcome(records[i], answer, attempts)

    @property
    def takes_runs(self) -> bool:
        """Whether `process_runs` may be used: the function runs in this service's workers."""
        return isinstance(self._invoker, SegmentInvoker)

    async def process_runs(
        self, runs: list[RecordRun]
    ) -> tuple[list[RecordRun], list[FailedRecord]]:
        """`process` for records as read from the log (no Kinesis metadata), without a Python
        object per record: the same invocations with the same record ids, sent to the workers
        as slices of the runs, and the records answered Ok back as runs, in input order."""
        assert isinstance(self._invoker, SegmentInvoker)
        invocations: list[list[_Piece]] = []
        current: list[_Piece] = []
        failed: list[tuple[int, FailedRecord]] = []
        data_bytes = size = 0
        envelope, buffer_bytes, digits = self._envelope, self.buffer_bytes, len
        index = 0
        for run_index, run in enumerate(runs):
            await asyncio.sleep(0)  # a large read must not hold the API's loop
            stamp = len(str(run.arrival_ms)) + _PLAIN_ENTRY
            piece: _Piece | None = None
            offset = 0
            for position, length in enumerate(run.lengths):
                entry = stamp + digits(str(index)) + 4 * ((length + 2) // 3)
                if envelope + entry > PAYLOAD_LIMIT:
                    piece = None
                    record = _record_of(run, position, offset, length)
                    message = InvokeError(
                        REQUEST_TOO_LARGE, f"Its event would be {envelope + entry} bytes."
                    ).message
                    failed.append((index, self._failed(record, REQUEST_TOO_LARGE, message, 0)))
                elif current and (
                    data_bytes + length > buffer_bytes or size + 1 + entry > PAYLOAD_LIMIT
                ):
                    invocations.append(current)
                    piece = _Piece(run_index, position, offset, index)
                    current = [piece]
                    data_bytes, size = length, envelope + entry
                else:
                    if not current:
                        data_bytes, size = 0, envelope
                    else:
                        size += 1  # the comma between entries
                    if piece is None:
                        piece = _Piece(run_index, position, offset, index)
                        current.append(piece)
                    data_bytes += length
                    size += entry
                if piece is not None:
                    piece.stop, piece.end = position + 1, offset + length
                offset += length
                index += 1
        if current:
            invocations.append(current)
        results = await asyncio.gather(
            *(self._invoke_pieces(runs, part, failed) for part in invocations)
        )
        routed = [run for result in results for run in result]
        failed.sort(key=lambda pair: pair[0])
        return routed, [record for _, record in failed]

    async def _invoke_pieces(
        self, runs: list[RecordRun], part: list[_Piece], failed: list[tuple[int, FailedRecord]]
    ) -> list[RecordRun]:
        """One invocation of run slices with its retries: the runs of what it answered Ok;
        what failed goes to `failed` with its index."""
        invoker = self._invoker
        assert isinstance(invoker, SegmentInvoker)
        segments: list[Segment] = [
            (
                p.first_index,
                runs[p.run].arrival_ms,
                runs[p.run].lengths[p.start : p.stop],
                runs[p.run].data[p.base : p.end],  # a view: the channel sends it as it lies
            )
            for p in part
        ]

        def call() -> Awaitable[list[SegmentAnswer]]:
            return invoker.invoke_segments(self._shape, str(uuid.uuid4()), segments, self._timeout)

        answers, attempts = await self._attempts(sum(p.stop - p.start for p in part), call)
        if isinstance(answers, InvokeError):
            for p in part:
                run, offset = runs[p.run], p.base
                for position in range(p.start, p.stop):
                    length = run.lengths[position]
                    record = _record_of(run, position, offset, length)
                    offset += length
                    failure = self._failed(record, answers.code, answers.message, attempts)
                    failed.append((p.first_index + position - p.start, failure))
            return []
        out: list[RecordRun] = []
        for p, (lengths, data, others) in zip(part, answers, strict=True):
            run = runs[p.run]
            seqs = run.seqs[p.start : p.stop] if run.seqs else None
            sub_seqs = run.sub_seqs[p.start : p.stop] if run.sub_seqs else None
            if not others:
                if lengths:
                    first = seqs[0] if seqs else run.first_seq + p.start
                    out.append(
                        RecordRun(first, run.arrival_ms, lengths, memoryview(data), seqs, sub_seqs)
                    )
                continue
            out += self._mixed(run, p, lengths, data, others, attempts, failed)
        return out

    def _mixed(
        self,
        run: RecordRun,
        piece: _Piece,
        lengths: list[int],
        data: bytes | memoryview,
        others: dict[int, Answer],
        attempts: int,
        failed: list[tuple[int, FailedRecord]],
    ) -> list[RecordRun]:
        """A slice some of whose records were not plainly Ok: record by record."""
        kept: list[ProcessingRecord] = []
        offset, at = piece.base, 0
        for index, length in enumerate(lengths):
            position = piece.start + index
            in_length = run.lengths[position]
            record = _record_of(run, position, offset, in_length)
            offset += in_length
            answer = others.get(index)
            if answer is None:
                kept.append(
                    ProcessingRecord(
                        record.seq, record.arrival_ms, data[at : at + length], record.sub_seq
                    )
                )
                at += length
                continue
            outcome = self._outcome(
                ProcessingRecord(record.seq, record.arrival_ms, record.data, record.sub_seq),
                answer,
                attempts,
            )
            if isinstance(outcome, FailedRecord):
                failed.append((piece.first_index + index, outcome))
            elif outcome is not None:
                kept.append(outcome)
        return [run for _, run in records_to_runs(kept)]

    def _outcome(
        self, record: ProcessingRecord, answer: Answer, attempts: int
    ) -> ProcessingRecord | FailedRecord | None:
        if answer.result == "Dropped":
            return None
        if answer.result == "Failed":
            return self._failed(record, answer.error_code, answer.error_message, attempts)
        return ProcessingRecord(
            seq=record.seq,
            arrival_ms=record.arrival_ms,
            data=answer.data,
            sub_seq=record.sub_seq,
            lambda_keys=answer.partition_keys,
            query_keys=record.query_keys,
            kinesis=record.kinesis,
        )

    def _failed(
        self, record: ProcessingRecord | Record, code: str, message: str, attempts: int
    ) -> FailedRecord:
        """The record as it came in (its original bytes) filed under processing-failed."""
        return FailedRecord(
            record=Record(record.seq, record.arrival_ms, record.data, record.sub_seq),
            output_type="processing-failed",
            error_code=code,
            error_message=message,
            details={"lambdaArn": self.lambda_arn, "attemptsMade": attempts},
        )

    async def close(self) -> None:
        await self._invoker.close()


@dataclass(slots=True)
class _Piece:
    """Records start..stop of runs[run], whose bytes are data[base:end]; the first one's id."""

    run: int
    start: int
    base: int
    first_index: int
    stop: int = 0
    end: int = 0


def _record_of(run: RecordRun, position: int, offset: int, length: int) -> Record:
    return Record(
        run.seqs[position] if run.seqs else run.first_seq + position,
        run.arrival_ms,
        run.data[offset : offset + length],
        run.sub_seqs[position] if run.sub_seqs else 0,
    )


def build(config: ProcessorConfig, context: ProcessingContext) -> LambdaProcessor:
    """The registry's builder for `Type: Lambda`."""
    return LambdaProcessor(config, context)
