"""A pool of worker processes that run a Python transform, one call at a time each.

concurrent.futures.ProcessPoolExecutor cannot kill one hung task, so this pool keeps a process
and a Pipe per worker: a call past its timeout kills its worker, a worker that dies (os._exit,
a segfault, the memory limit) is noticed by the end of its pipe, and either is replaced by a new
process at the next call. Workers are spawned (no copy of the service's threads or loop), import
the handler once, and run with RLIMIT_AS so a runaway allocation fails inside the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any, TypeVar

from transforms.channel import Channel
from transforms.lambda_contract import (
    FUNCTION_ERROR,
    FUNCTION_TIMED_OUT,
    RESOURCE_NOT_FOUND,
    Answer,
    EventShape,
    InvokeError,
    Segment,
    SegmentAnswer,
    WireRecord,
)
from transforms.lambda_handler import FunctionInfo
from transforms.processor import ProcessingRecord

_T = TypeVar("_T")
_SPAWN: Any = __import__("multiprocessing").get_context("spawn")


def _worker_main(pipe: Connection, spec: str, info: FunctionInfo, memory_mib: int) -> None:
    """The worker process: limit memory, import the handler, then answer calls until told to
    stop or the pipe closes."""
    import asyncio
    import resource

    from transforms.lambda_contract import InvokeError, answer_segments, answer_wire_event
    from transforms.lambda_handler import (
        HandlerError,
        HandlerNotFound,
        LambdaContext,
        call_handler,
        load_handler,
        run_handler,
    )

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    conn = Channel(pipe)
    if memory_mib > 0:
        limit = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        handler = load_handler(spec)
    except HandlerNotFound as exc:
        conn.send(("not-found", str(exc)))
        return
    loop = asyncio.new_event_loop()
    conn.send(("ready", ""))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        *job, timeout = request
        context = LambdaContext(info, timeout)

        def call(payload: bytes, context: LambdaContext = context) -> bytes:
            return call_handler(handler, payload, context, loop)

        def run(event: dict[str, Any], context: LambdaContext = context) -> tuple[Any, bytes]:
            return run_handler(handler, event, context, loop)

        try:
            if len(job) == 1:  # a payload: answer the body
                conn.send(("ok", call(job[0])))
            elif len(job) == 4:  # segments: as records, answered compactly
                shape, invocation_id, segments, _ = job
                answered = answer_segments(shape, invocation_id, segments, run)
                # The records' bytes as views: the channel sends them out of band.
                conn.send(("answers", [(n, memoryview(b), o) for n, b, o in answered]))
            else:  # records: build the event and read the answer here, off the service
                shape, invocation_id, wire = job
                conn.send(("answers", answer_wire_event(shape, invocation_id, wire, call)))
        except HandlerError as exc:
            conn.send(("error", str(exc)))
        except InvokeError as exc:
            conn.send(("invoke-error", (exc.code, exc.detail, exc.retryable)))
        except MemoryError:
            conn.send(("error", f"MemoryError: over the worker's {memory_mib} MiB"))


def _in_thread(function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
    """Run a blocking pipe call on a daemon thread of its own: the loop never blocks, and a
    call still waiting on a worker never holds up the service's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = function(*args), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="transform-pipe", daemon=True).start()
    return future


@dataclass(eq=False)
class _Worker:
    process: SpawnProcess
    conn: Channel

    def call(self, request: tuple[Any, ...]) -> tuple[str, Any]:
        """Send one call and wait for its answer ("crashed" when the worker died)."""
        try:
            self.conn.send(request)
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            return "crashed", self.exit_reason()
        return kind, value

    def exit_reason(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is None:
            return "the worker stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"the worker was killed by {signal.Signals(-code).name}"
        return f"the worker exited with code {code}"

    def signal_kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()

    def kill(self) -> None:
        """Kill, reap and close; safe to call twice."""
        self.signal_kill()
        with contextlib.suppress(ValueError):
            self.process.join(5)
        self.conn.close()


class WorkerPool:
    """`size` worker processes for one handler; `invoke` is the Invoker of process mode."""

    def __init__(
        self, spec: str, info: FunctionInfo, *, size: int, memory_mib: int, start_timeout: float
    ) -> None:
        self._spec = spec
        self._info = info
        self._memory_mib = memory_mib
        self._start_timeout = start_timeout
        # One slot per worker; None is a worker not (or no longer) running.
        self._slots: asyncio.Queue[_Worker | None] = asyncio.Queue()
        for _ in range(size):
            self._slots.put_nowait(None)
        self._all: set[_Worker] = set()
        self._closed = False
        # One thread per worker waits on its pipe: started once, not per call. A call that
        # hangs ends when its worker is killed (the pipe closes), so these never block exit.
        self._pipes = ThreadPoolExecutor(max_workers=size, thread_name_prefix="transform-pipe")

    def _start(self) -> _Worker:
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=_worker_main,
            args=(theirs, self._spec, self._info, self._memory_mib),
            daemon=True,
            name="firehose-transform",
        )
        process.start()
        theirs.close()  # so that the worker's death reads as end of file here
        worker = _Worker(process, Channel(ours))
        try:
            if not worker.conn.poll(self._start_timeout):
                worker.kill()
                raise InvokeError(
                    FUNCTION_TIMED_OUT, "The worker did not start in time.", retryable=True
                )
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            reason = worker.exit_reason()
            worker.kill()
            raise InvokeError(
                FUNCTION_ERROR, f"Loading the handler: {reason}.", retryable=True
            ) from None
        if kind == "not-found":
            worker.kill()
            raise InvokeError(RESOURCE_NOT_FOUND, f"{value}.")
        return worker

    async def invoke(self, payload: bytes, timeout: float) -> bytes:
        """The response body, or InvokeError: timed out and crashed workers are replaced."""
        body: bytes = await self._call((payload, timeout), timeout)
        return body

    async def invoke_records(
        self,
        shape: EventShape,
        invocation_id: str,
        items: list[tuple[str, ProcessingRecord]],
        timeout: float,
    ) -> list[Answer]:
        """The answers for `items`: the worker builds the event and reads the response, so
        the service's loop only hands over bytes."""
        wire: list[WireRecord] = [
            (record_id, record.arrival_ms, bytes(record.data), record.kinesis)
            for record_id, record in items
        ]
        answers: list[Answer] = await self._call((shape, invocation_id, wire, timeout), timeout)
        return answers

    async def invoke_segments(
        self,
        shape: EventShape,
        invocation_id: str,
        segments: list[Segment],
        timeout: float,
    ) -> list[SegmentAnswer]:
        """`invoke_records` for records without Kinesis metadata sent as segments, answered
        compactly: no per-record objects cross the pipe."""
        request = (shape, invocation_id, segments, "segments", timeout)
        answers: list[SegmentAnswer] = await self._call(request, timeout)
        return answers

    async def _call(self, request: tuple[Any, ...], timeout: float) -> Any:
        worker = await self._slots.get()
        call: asyncio.Future[tuple[str, Any]] | None = None
        keep = False  # the worker answered and may take the next call
        try:
            if worker is None or not worker.process.is_alive():
                if worker is not None:
                    await self._retire(worker, None)
                worker = None
                worker = await _in_thread(self._start)
                self._all.add(worker)
            call = asyncio.get_running_loop().run_in_executor(self._pipes, worker.call, request)
            try:
                kind, value = await asyncio.wait_for(asyncio.shield(call), timeout)
            except TimeoutError:
                raise InvokeError(
                    FUNCTION_TIMED_OUT, f"No answer after {timeout:g} s.", retryable=True
                ) from None
            keep = kind != "crashed"
            if kind in ("ok", "answers"):
                return value
            if kind == "invoke-error":
                code, detail, retryable = value
                raise InvokeError(code, detail, retryable=retryable)
            raise InvokeError(FUNCTION_ERROR, f"{value}.", retryable=True)
        finally:
            if worker is not None and not keep:
                await self._retire(worker, call)
                worker = None
            self._slots.put_nowait(worker)

    async def _retire(self, worker: _Worker, call: asyncio.Future[Any] | None) -> None:
        """Kill a worker that timed out, crashed or was abandoned, once its call has ended."""
        self._all.discard(worker)
        worker.signal_kill()
        if call is not None:
            await asyncio.wait([call])  # the call's thread sees the pipe close and returns
        await _in_thread(worker.kill)

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids (for tests and diagnostics)."""
        return [w.process.pid for w in self._all if w.process.pid is not None]

    async def close(self) -> None:
        """Ask each worker to stop, kill those that do not, and free the threads."""
        self._closed = True
        workers, self._all = list(self._all), set()

        def stop(worker: _Worker) -> None:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.process.join(2)
            worker.kill()

        await asyncio.gather(*(_in_thread(stop, w) for w in workers))
        self._pipes.shutdown(wait=False)
