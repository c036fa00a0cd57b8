"""Ingest throughput of `firehose serve`, next to the least work any such service must do.

Service: a real SeaweedFS and `firehose serve` run as processes, with one GZIP stream buffering
--buffer-mib MiB. --producers asyncio tasks POST pre-built PutRecordBatch bodies (500 clickstream
JSON records of ~250 bytes each) with raw aiohttp for --seconds. The run prints acknowledged
records/s and MiB/s of record data, PutRecordBatch latency, the service's peak RSS and CPU seconds
(up to the end of its SIGTERM flush), MiB per service CPU second, and what landed in S3. Those
objects are decompressed and their records counted against what was acknowledged.

Baseline (bench/baseline.py): the same bodies, in a process of its own, go through only the work a
Firehose-like service cannot avoid. It parses each body (orjson, then a2b_base64 per record), gzips
buffers of the same size with the service's own codec (firehose.compression) in a thread, and
uploads each buffer to the same SeaweedFS with aiobotocore. It has no HTTP server, no write-ahead
log (append + fdatasync) and no delivery bookkeeping, so service/baseline shows what those and the
service's glue cost. The two phases run one after the other, so neither takes the other's cores.

--auth adds a phase: the service again, with a credentials file, so that it verifies each
request's SigV4 signature. Both service phases then sign every request as botocore does, so the
load generator's work is the same and the ratio shows what verification costs the service.
The service shares the machine's cores with the load generator (its CPU is printed too) and with
SeaweedFS.

--encrypted-log runs the service phase again on a stream whose log is encrypted
(DeliveryStreamEncryptionConfigurationInput, AWS_OWNED_CMK) and prints it beside the plain run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import json
import math
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from isal import igzip

from bench import baseline
from bench.baseline import BaselineFigures
from bench.clickstream import RECORDS_PER_BODY, STREAM, Body, build_pool
from bench.measure import (
    cpu_seconds,
    die_with_parent,
    kernel_seconds,
    percentile,
    status_mib,
    terminate_and_reap,
)
from firehose.testing.servers import S3Server, find_binary, start_seaweedfs, stop
from firehose.testing.service_process import ServiceProcess, s3_stream
from firehose.testing.signing import signed_headers

MIB = 1024 * 1024
SERVICE_BUCKET = "bench-service"
HEADERS = {
    "X-Amz-Target": "Firehose_20150804.PutRecordBatch",
    "Content-Type": "application/x-amz-json-1.1",
}
SHUTDOWN_TIMEOUT_S = 300  # the service's own flush deadline after SIGTERM: all must land
BENCH_KEY_ID, BENCH_SECRET = "AKIDBENCH", "bench-secret"


# -- the load generator ------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What the producers sent and what the service answered."""

    seconds: float = 0.0
    requests: int = 0  # answered 200
    records: int = 0  # acknowledged (had a RecordId)
    data_bytes: int = 0  # decoded bytes of the acknowledged records
    failed_records: int = 0  # FailedPutCount, summed
    throttled: int = 0  # 503 answers
    errors: int = 0  # other answers and connection errors
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    worst_ms: float = 0.0
    worst_at_s: float = 0.0  # when the slowest request was sent, from the load's start
    started: float = 0.0
    generator_cpu_s: float = 0.0

    def take(self, body: Body, answer: dict[str, Any]) -> None:
        self.requests += 1
        failed = answer["FailedPutCount"]
        if failed == 0:
            self.records += len(body.lengths)
            self.data_bytes += body.data_bytes
            return
        self.failed_records += failed
        for length, item in zip(body.lengths, answer["RequestResponses"], strict=True):
            if "RecordId" in item:
                self.records += 1
                self.data_bytes += length

    def record_latency(self, sent: float) -> None:
        latency = (time.perf_counter() - sent) * 1000
        self.latencies_ms.append(latency)
        if latency > self.worst_ms:
            self.worst_ms, self.worst_at_s = latency, sent - self.started

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


@functools.cache
def _payload_hash(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _headers(url: str, payload: bytes, signed: bool) -> dict[str, str]:
    """The request's headers; signed now with botocore's SigV4, as an SDK producer signs. The
    body's hash goes in X-Amz-Content-Sha256, computed once per pooled body, so that the load
    generator's hashing does not limit the load (the service hashes every body all the same)."""
    if not signed:
        return HEADERS
    content_hash = {"X-Amz-Content-Sha256": _payload_hash(payload)}
    return signed_headers(
        url, "PutRecordBatch", payload, key_id=BENCH_KEY_ID, secret=BENCH_SECRET, extra=content_hash
    )


async def _producer(
    session: aiohttp.ClientSession,
    url: str,
    pool: Sequence[Body],
    turns: itertools.count[int],
    deadline: float,
    result: LoadResult,
    signed: bool,
) -> None:
    while time.perf_counter() < deadline:
        body = pool[next(turns) % len(pool)]
        sent = time.perf_counter()
        headers = _headers(url, body.payload, signed)
        try:
            async with session.post(url, data=body.payload, headers=headers) as answer:
                raw = await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error(repr(exc))
            await asyncio.sleep(0.1)
            continue
        result.record_latency(sent)
        if status == 200:
            result.take(body, orjson.loads(raw))
        elif status == 503:
            result.throttled += 1
            await asyncio.sleep(0.05)
        else:
            result.error(f"HTTP {status}: {raw[:200]!r}")
            await asyncio.sleep(0.1)


async def produce(
    url: str, pool: Sequence[Body], seconds: float, producers: int, signed: bool = False
) -> LoadResult:
    """Send bodies from `pool` with `producers` concurrent requests for `seconds`; `signed`:
    each request SigV4-signed with the bench's key."""
    result = LoadResult()
    turns = itertools.count()
    connector = aiohttp.TCPConnector(limit=producers)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started, cpu = time.perf_counter(), time.process_time()
        result.started, deadline = started, started + seconds
        await asyncio.gather(
            *(
                _producer(session, url, pool, turns, deadline, result, signed)
                for _ in range(producers)
            )
        )
        result.seconds = time.perf_counter() - started
        result.generator_cpu_s = time.process_time() - cpu
    return result


# -- the service -------------------------------------------------------------------------------


@dataclass
class Landed:
    """What a bucket holds: objects, their stored bytes, and the records inside them."""

    objects: int = 0
    stored_bytes: int = 0
    records: int = 0
    data_bytes: int = 0


def count_landed(server: S3Server, bucket: str) -> Landed:
    """Download and gunzip every object; records are the newlines every record ends with."""
    client = server.client()
    landed = Landed()
    for key in server.list_keys(bucket):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        data: bytes = igzip.decompress(body)  # type: ignore[no-untyped-call]
        landed.objects += 1
        landed.stored_bytes += len(body)
        landed.records += data.count(b"\n")
        landed.data_bytes += len(data)
    return landed


@dataclass
class ServiceFigures:
    load: LoadResult
    cpu_load_s: float  # during the load window
    cpu_total_s: float  # from the load's start to the end of the SIGTERM flush
    sys_total_s: float  # the kernel's part of it (socket and log writes, fdatasync)
    rss_start_mib: float  # VmRSS once healthy, before the load
    vm_hwm_mib: float  # VmHWM when the load stopped
    max_rss_mib: float  # ru_maxrss at exit: includes the final flush
    backlog_mib: float  # acknowledged but not yet delivered when the load stopped
    flush_s: float  # SIGTERM to exit
    exit_code: int
    s3_cpu_s: float  # SeaweedFS's CPU, load window and flush
    landed: Landed


def undelivered_mib(url: str) -> float:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
        health = json.load(answer)
    return float(health["streams"][STREAM]["undelivered_bytes"]) / MIB


def start_profiler(path: Path | None, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the service for the load window; its own CPU skews the figures a little."""
    if path is None:
        return None
    kind = {".json": "speedscope", ".txt": "raw"}.get(path.suffix, "flamegraph")
    command = [
        find_binary("py-spy"), "record", "--pid", str(pid), "--output", str(path),
        "--format", kind, "--duration", str(max(1, round(seconds))), "--nonblocking", "--threads",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)


def finish_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is None:
        return
    try:
        profiler.wait(timeout=10)
    except subprocess.TimeoutExpired:
        profiler.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        profiler.wait(timeout=10)


def run_service(
    args: argparse.Namespace,
    server: S3Server,
    s3_pid: int,
    workdir: Path,
    pool: list[Body],
    *,
    bucket: str = SERVICE_BUCKET,
    destination: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    count: Callable[[S3Server, str], Landed] | None = None,
    stream_fields: dict[str, Any] | None = None,
    signed: bool = False,
) -> ServiceFigures:
    """Run the service under load; `destination` adds to (or overrides) its S3 destination's
    config, `stream_fields` to the stream's; `count` reads what landed (gzip'd lines unless
    told); `signed`: the producers sign their requests."""
    server.create_bucket(bucket)
    stream = s3_stream(
        STREAM,
        bucket,
        **{
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": args.buffer_mib, "IntervalInSeconds": 60},
            **(destination or {}),
        },
    )
    stream.update(stream_fields or {})
    env = {
        **server.env(),
        "FIREHOSE_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT_S),
        **(env or {}),
    }
    service = ServiceProcess(workdir, [stream], env=env)
    profiler = None
    try:
        service.start()
        assert service.proc is not None
        pid = service.proc.pid
        profiler = start_profiler(args.profile, pid, args.seconds)
        rss_start = status_mib(pid, "VmRSS")
        cpu_start, s3_start = cpu_seconds(pid), cpu_seconds(s3_pid)
        sys_start = kernel_seconds(pid)
        load = asyncio.run(produce(f"{service.url}/", pool, args.seconds, args.producers, signed))
        cpu_load = cpu_seconds(pid) - cpu_start
        vm_hwm = status_mib(pid, "VmHWM")
        backlog = undelivered_mib(service.url)
        finish_profiler(profiler)
        stopping = time.perf_counter()
        code, usage = terminate_and_reap(service.proc, SHUTDOWN_TIMEOUT_S + 15)
        flush_s = time.perf_counter() - stopping
        s3_cpu = cpu_seconds(s3_pid) - s3_start
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        service.ensure_stopped()
    return ServiceFigures(
        load=load,
        cpu_load_s=cpu_load,
        cpu_total_s=usage.ru_utime + usage.ru_stime - cpu_start,
        sys_total_s=usage.ru_stime - sys_start,
        rss_start_mib=rss_start,
        vm_hwm_mib=vm_hwm,
        max_rss_mib=usage.ru_maxrss / 1024,
        backlog_mib=backlog,
        flush_s=flush_s,
        exit_code=code,
        s3_cpu_s=s3_cpu,
        landed=(count or count_landed)(server, bucket),
    )


# -- the report --------------------------------------------------------------------------------


def _per(amount: float, per: float) -> float:
    return amount / per if per else math.nan


def _cell(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(service: float, baseline: float) -> str:
    if math.isnan(service) or math.isnan(baseline) or not baseline:
        return "-"
    return f"{service / baseline:.2f}x"


def print_table(
    rows: Sequence[tuple[str, float, float, int]],
    header: tuple[str, str, str] = ("service", "baseline", "service/baseline"),
) -> None:
    cells = [("", *header)]
    cells += [(label, _cell(s, d), _cell(b, d), _ratio(s, b)) for label, s, b, d in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    for index, row in enumerate(cells):
        line = [row[0].ljust(widths[0])]
        line += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(line))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _delivery_check(load: LoadResult, landed: Landed) -> str:
    if (landed.records, landed.data_bytes) == (load.records, load.data_bytes):
        return "OK"
    if landed.records > load.records:
        return "MORE than acknowledged (duplicates?)"
    return "LOST RECORDS"


def report(svc: ServiceFigures, base: BaselineFigures) -> None:
    load, landed = svc.load, svc.landed
    svc_mib, base_mib = load.data_bytes / MIB, base.data_bytes / MIB
    latencies = load.latencies_ms
    rows = [
        ("records acknowledged / processed", load.records, base.records, 0),
        ("record data MiB (decoded)", svc_mib, base_mib, 1),
        ("window s (load / whole baseline)", load.seconds, base.seconds, 2),
        ("records/s", _per(load.records, load.seconds), _per(base.records, base.seconds), 0),
        ("MiB/s", _per(svc_mib, load.seconds), _per(base_mib, base.seconds), 1),
        ("MiB/s to the end of the SIGTERM flush", _per(svc_mib, load.seconds + svc.flush_s),
         _per(base_mib, base.seconds), 1),
        ("latency p50 ms (PutRecordBatch / decode)", percentile(latencies, 0.5),
         base.decode_p50_ms, 2),
        ("latency p99 ms", percentile(latencies, 0.99), base.decode_p99_ms, 2),
        ("latency max ms", max(latencies, default=math.nan), base.decode_max_ms, 2),
        ("peak RSS MiB (VmHWM)", svc.vm_hwm_mib, base.vm_hwm_mib, 0),
        ("CPU s (service: to the end of its flush)", svc.cpu_total_s, base.cpu_s, 2),
        ("MiB per CPU second", _per(svc_mib, svc.cpu_total_s), _per(base_mib, base.cpu_s), 1),
        ("objects in S3", landed.objects, base.objects, 0),
        ("MiB stored (gzip)", landed.stored_bytes / MIB, base.stored_bytes / MIB, 1),
        ("SeaweedFS CPU s", svc.s3_cpu_s, base.s3_cpu_s, 2),
    ]  # fmt: skip
    print()
    print_table(rows)
    print()
    print(
        f"service: {load.requests:,} requests answered 200, {load.failed_records:,} records "
        f"failed, {load.throttled:,} answers 503, {load.errors:,} errors; slowest sent "
        f"{load.worst_at_s:.2f} s into the load"
        + (f" (first: {load.first_error})" if load.first_error else "")
    )
    print(
        f"  CPU {svc.cpu_load_s:.2f} s in the load window "
        f"({_per(svc.cpu_load_s, load.seconds):.0%} of one core), "
        f"{svc.cpu_total_s - svc.cpu_load_s:.2f} s after it, {svc.sys_total_s:.2f} s of all "
        f"in the kernel; "
        f"load generator {load.generator_cpu_s:.2f} s "
        f"({_per(load.generator_cpu_s, load.seconds):.0%} of one core)"
    )
    print(
        f"  undelivered when the load stopped {svc.backlog_mib:.1f} MiB; SIGTERM to exit "
        f"{svc.flush_s:.2f} s, exit code {svc.exit_code}; RSS {svc.rss_start_mib:.0f} MiB "
        f"before the load, peak {svc.max_rss_mib:.0f} to exit "
        f"(+{svc.max_rss_mib - svc.rss_start_mib:.0f})"
    )
    print(
        f"  delivered {landed.records:,} records / {landed.data_bytes:,} bytes in "
        f"{landed.objects} objects vs acknowledged {load.records:,} / {load.data_bytes:,}: "
        f"{_delivery_check(load, landed)}"
    )
    print(
        f"baseline: decode alone {_per(base.records, base.decode_s):,.0f} records/s; gzip "
        f"{_per(base_mib, base.gzip_cpu_s):,.0f} MiB per CPU second (ratio "
        f"{_per(base.data_bytes, base.stored_bytes):.1f}); put_object "
        f"{_per(base.stored_bytes / MIB, base.upload_s):,.0f} MiB/s of gzip; RSS "
        f"{base.rss_before_mib:.0f} MiB before, peak {base.vm_hwm_mib:.0f} "
        f"(+{base.vm_hwm_mib - base.rss_before_mib:.0f})"
    )


def report_variant(plain: ServiceFigures, variant: ServiceFigures, name: str, note: str) -> None:
    """The same load through a variant of the service (`name`), beside the plain run."""

    def mib(run: ServiceFigures) -> float:
        return run.load.data_bytes / MIB

    figures: list[tuple[str, Callable[[ServiceFigures], float], int]] = [
        ("records/s", lambda r: _per(r.load.records, r.load.seconds), 0),
        ("MiB/s", lambda r: _per(mib(r), r.load.seconds), 1),
        ("MiB per CPU second", lambda r: _per(mib(r), r.cpu_total_s), 1),
        ("latency p50 ms", lambda r: percentile(r.load.latencies_ms, 0.5), 2),
        ("latency p99 ms", lambda r: percentile(r.load.latencies_ms, 0.99), 2),
    ]
    rows = [(label, figure(variant), figure(plain), digits) for label, figure, digits in figures]
    print()
    print(f"{name} ({note}):")
    print_table(rows, (name, "plain", f"{name}/plain"))
    refused = variant.load.errors
    print(
        f"  {name} run: {refused:,} errors"
        + (f" (first: {variant.load.first_error})" if refused else "")
        + f"; delivered {variant.landed.records:,} records vs acknowledged "
        f"{variant.load.records:,}: {_delivery_check(variant.load, variant.landed)}"
    )


def run_authenticated(
    args: argparse.Namespace, server: S3Server, s3_pid: int, workdir: Path, pool: list[Body]
) -> ServiceFigures:
    """The service with a credentials file holding the bench's key, under the same load."""
    workdir.mkdir(parents=True)
    credentials = workdir / "credentials"
    credentials.write_text(
        f"[bench]\naws_access_key_id = {BENCH_KEY_ID}\naws_secret_access_key = {BENCH_SECRET}\n"
    )
    env = {"FIREHOSE_CREDENTIALS_FILE": str(credentials)}
    return run_service(
        args, server, s3_pid, workdir / "service", pool, bucket="bench-auth", env=env, signed=True
    )


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="PutRecordBatch → GZIP → SeaweedFS throughput, service vs baseline.",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration (20)")
    parser.add_argument("--producers", type=int, default=8, help="concurrent requests (8)")
    parser.add_argument(
        "--buffer-mib", type=int, default=64, choices=range(1, 129), metavar="1..128",
        help="the stream's BufferingHints SizeInMBs (64)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, metavar="FILE",
        help="py-spy record the service during the load: .svg flamegraph, .json speedscope, "
        ".txt collapsed stacks (py-spy must be installed)",
    )  # fmt: skip
    parser.add_argument(
        "--encrypted-log", action="store_true",
        help="then run the same load on a stream whose log is encrypted (AWS_OWNED_CMK) and "
        "print it beside the plain run",
    )  # fmt: skip
    parser.add_argument(
        "--auth", action="store_true",
        help="sign every request (botocore SigV4) and run the service a second time with "
        "authentication on; print the two side by side",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.producers < 1:
        parser.error("--seconds and --producers must be positive")
    return args


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that every finally stops its processes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    pool = build_pool()
    records = sum(len(body.lengths) for body in pool)
    print(
        f"pool: {len(pool)} PutRecordBatch bodies of {RECORDS_PER_BODY} records, "
        f"{sum(b.data_bytes for b in pool) / records:.0f} bytes per record, "
        f"{sum(len(b.payload) for b in pool) / len(pool) / 1024:.0f} KiB per body; "
        f"GZIP, buffer {args.buffer_mib} MiB, {args.producers} producers, {args.seconds:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="firehose-bench-") as tmp:
        print("starting SeaweedFS", flush=True)
        server, weed = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            print("service phase", flush=True)
            service = run_service(
                args, server, weed.pid, Path(tmp) / "service", pool, signed=args.auth
            )
            verified = None
            if args.auth:
                print("service phase with authentication", flush=True)
                verified = run_authenticated(args, server, weed.pid, Path(tmp) / "auth", pool)
            sealed = None
            if args.encrypted_log:
                print("service phase, encrypted log", flush=True)
                sealed = run_service(
                    args, server, weed.pid, Path(tmp) / "sealed", pool,
                    bucket=f"{SERVICE_BUCKET}-sealed",
                    stream_fields={"DeliveryStreamEncryptionConfigurationInput": {}},
                    signed=args.auth,
                )  # fmt: skip
            print("baseline phase", flush=True)
            base = baseline.measure(
                server,
                weed.pid,
                pool,
                requests=service.load.requests,
                buffer_mib=args.buffer_mib,
                seconds=args.seconds,
            )
        finally:
            stop(weed)
    report(service, base)
    if sealed is not None:
        report_variant(service, sealed, "encrypted log", "AWS_OWNED_CMK; same load")
    if verified is not None:
        report_variant(
            service, verified, "authenticated", "both runs send botocore-signed requests"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
