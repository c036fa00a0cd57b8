"""The processing stage in a process of its own, so processing uses another core than the API.

Processors are Python per record (jq, de-aggregation, the Lambda contract); run on the service's
event loop they take the very core that answers PutRecordBatch. Here the stream hands each read
to a child process as plain tuples of bytes and gets routed runs and failed records back; the
loop only pickles. The child builds the stage from the stream's config; if it dies, the call
fails (the stream restarts delivery from its watermark) and the next call starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from firehose.batch import PartitionKey, Record, RecordRun
from firehose.config import DeliveryStreamConfig
from firehose.destination import FailedRecord
from firehose.stage import StageOutput
from transforms.channel import Channel
from transforms.processor import ProcessingContext

if TYPE_CHECKING:
    from transforms.stage import ProcessingStage

_SPAWN: Any = multiprocessing.get_context("spawn")
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NICENESS = 5
# How long a new stage process may take to import and build its processors.
START_SECONDS = 60.0

# What crosses the pipe: runs as (first seq, arrival ms, lengths, data, seqs, sub seqs, arrivals).
WireRun = tuple[
    int, int, list[int], memoryview, list[int] | None, list[int] | None, list[int] | None
]
WireFailure = tuple[int, int, bytes, int, str, str, str, dict[str, Any], bool]


def _to_wire(run: RecordRun) -> WireRun:
    # The data as a view: the channel sends it as it lies.
    return (
        run.first_seq,
        run.arrival_ms,
        run.lengths,
        run.data,
        run.seqs,
        run.sub_seqs,
        run.arrivals,
    )


def _from_wire(wire: WireRun) -> RecordRun:
    first_seq, arrival_ms, lengths, data, seqs, sub_seqs, arrivals = wire
    return RecordRun(first_seq, arrival_ms, lengths, memoryview(data), seqs, sub_seqs, arrivals)


def _failure_to_wire(failure: FailedRecord) -> WireFailure:
    record = failure.record
    return (
        record.seq,
        record.arrival_ms,
        bytes(record.data),
        record.sub_seq,
        failure.output_type,
        failure.error_code,
        failure.error_message,
        dict(failure.details),
        failure.retriable,
    )


def _failure_from_wire(wire: WireFailure) -> FailedRecord:
    seq, arrival_ms, data, sub_seq, output_type, code, message, details, retriable = wire
    return FailedRecord(
        Record(seq, arrival_ms, data, sub_seq), output_type, code, message, details, retriable
    )


def _die_with_parent() -> None:
    """Linux: be killed when the service dies, even by SIGKILL, so no stage outlives it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _stage_main(pipe: Connection, config: DeliveryStreamConfig, context: ProcessingContext) -> None:
    """The stage process: build the stream's stage, then process reads until told to stop."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    # Below the service in priority, and so are the transform workers it starts: where the
    # cores are short, producers' requests are answered first and the log takes the backlog.
    os.nice(NICENESS)
    from transforms.stage import build_router, build_stage, source_steps

    stage = build_stage(
        config.destination.processing_configuration,
        context,
        build_router(config),
        source_steps(config, context),
    )
    conn = Channel(pipe)
    conn.send(("ready", None))
    if stage is None:
        return  # nothing to run: the service sees the pipe close
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_serve(conn, stage))
    finally:
        loop.run_until_complete(stage.close())
        loop.close()


async def _serve(conn: Channel, stage: ProcessingStage) -> None:
    """Process reads as they arrive, several at once (the service sends its next read before
    the last one's answer is in), and answer them in the order they came."""
    loop = asyncio.get_running_loop()
    requests: asyncio.Queue[list[WireRun] | None] = asyncio.Queue()

    def receive() -> None:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                request = None
            loop.call_soon_threadsafe(requests.put_nowait, request)
            if request is None:
                return

    threading.Thread(target=receive, name="stage-requests", daemon=True).start()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-answers") as answers:
        last: asyncio.Future[None] | None = None
        while (request := await requests.get()) is not None:
            last = asyncio.ensure_future(_answer(conn, answers, stage, request, last))
        if last is not None:
            await asyncio.wait([last])


async def _answer(
    conn: Channel,
    answers: ThreadPoolExecutor,
    stage: ProcessingStage,
    request: list[WireRun],
    previous: asyncio.Future[None] | None,
) -> None:
    """Process one read and send its answer once the answer before it has gone."""
    message: tuple[str, Any]
    try:
        output = await stage.process([_from_wire(r) for r in request])
        routed = [(partition, _to_wire(run)) for partition, run in output.routed]
        failed = [_failure_to_wire(failure) for failure in output.failed]
        source = None if output.source is None else [_to_wire(r) for r in output.source]
        message = ("ok", (routed, failed, source))
    except Exception as exc:
        message = ("error", f"{type(exc).__name__}: {exc}")
    if previous is not None:
        await asyncio.wait([previous])
    with contextlib.suppress(OSError):  # the service is gone: the receiver sees it too
        await asyncio.get_running_loop().run_in_executor(answers, conn.send, message)


class RemoteStage:
    """A `Stage` whose processors run in a child process (see the module docstring). Calls may
    overlap: each is sent as it comes, and the answers come back in the order sent."""

    def __init__(self, config: DeliveryStreamConfig, context: ProcessingContext) -> None:
        self._config = config
        self._context = context
        self._process: Any = None
        self._conn: Channel | None = None
        self._broken: Channel | None = None  # a pipe whose child was found dead
        # One thread sends and one waits for answers, so the event loop never blocks on the
        # pipe; the lock keeps the order of answers waited for that of requests sent.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-send")
        self._receiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-receive")
        self._order = asyncio.Lock()

    def _start(self) -> Channel:
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=_stage_main,
            args=(theirs, self._config, self._context),
            name=f"firehose-stage-{self._config.name}",
        )
        process.start()
        theirs.close()  # so that the child's death reads as end of file here
        channel = Channel(ours)
        if not channel.poll(START_SECONDS):
            process.kill()
            channel.close()
            raise RuntimeError("the processing stage did not start in time")
        kind, _ = channel.recv()
        assert kind == "ready"
        self._process, self._conn = process, channel
        return channel

    def _send(self, request: list[WireRun]) -> Channel:
        conn = self._conn
        if conn is None or conn is self._broken or not self._process.is_alive():
            self._stop()
            conn = self._start()
        try:
            conn.send(request)
        except OSError as exc:
            self._broken = conn
            raise RuntimeError(f"the processing stage process died: {exc!r}") from None
        return conn

    def _receive(self, conn: Channel) -> tuple[list[Any], list[WireFailure], Any]:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError) as exc:
            self._broken = conn
            raise RuntimeError(f"the processing stage process died: {exc!r}") from None
        if kind == "error":
            raise RuntimeError(f"the processing stage failed: {value}")
        routed, failed, source = value
        return routed, failed, source

    async def process(self, runs: list[RecordRun]) -> StageOutput:
        request = [_to_wire(run) for run in runs]
        loop = asyncio.get_running_loop()
        async with self._order:
            conn = await loop.run_in_executor(self._sender, self._send, request)
            answer = loop.run_in_executor(self._receiver, self._receive, conn)
        routed, failed, source = await answer
        output = StageOutput()
        output.routed = [(_partition(partition), _from_wire(wire)) for partition, wire in routed]
        output.failed = [_failure_from_wire(wire) for wire in failed]
        if source is not None:
            output.source = [_from_wire(wire) for wire in source]
        return output

    def _stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
        if process is not None:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._sender, self._stop)
        self._sender.shutdown(wait=True)
        self._receiver.shutdown(wait=True)


def _partition(value: Any) -> PartitionKey:
    """Partitions come back as lists of pairs where tuples went in (pickle keeps tuples)."""
    if value is None:
        return None
    return tuple((str(name), str(key)) for name, key in value)
