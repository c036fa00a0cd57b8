"""The running service: streams from configs, the API server, start-up and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import ssl
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from aiohttp import web

from destinations import (
    DestinationContext,
    build_destination,
    build_error_output,
    build_source_backup,
)
from firehose.api import FirehoseApi
from firehose.auth import Authenticator
from firehose.config import DeliveryStreamConfig
from firehose.config_load import ConfigCheck, load_configs
from firehose.control_plane import ControlPlane, stored_streams
from firehose.credentials import load_credentials
from firehose.describe import stream_arn
from firehose.destination import shown_target
from firehose.durable import lock_exclusively
from firehose.errors import StartError
from firehose.http_server import HttpLimits
from firehose.settings import Settings
from firehose.source import Source
from firehose.sources.registry import build_sources, kinesis_stream_arn
from firehose.stream import DeliveryStream
from firehose.stream_registry import StreamRegistry
from firehose.stream_store import StreamStore
from firehose.telemetry import Telemetry
from firehose.tls import server_context
from transforms.processor import ProcessingContext
from transforms.remote_stage import RemoteStage
from transforms.stage import needs_stage, processing_problems

log = logging.getLogger(__name__)
# Beside data_dir/streams/; one process per data dir, checked before the port is opened.
DATA_DIR_LOCK = "lock"
# A second SIGTERM or SIGINT during shutdown exits at once with this code.
FORCED_EXIT_CODE = 1


# What configs must pass beyond their models, checked by `serve` and `validate` alike.
CONFIG_CHECKS: list[ConfigCheck] = [processing_problems]


class Service:
    """One instance: serves the API at once, answers 503 until every stream has replayed its log."""

    def __init__(
        self,
        settings: Settings,
        configs: list[DeliveryStreamConfig],
        sources: list[Source] | None = None,
    ) -> None:
        self.settings = settings
        self.region = settings.region
        self.account_id = settings.account_id
        self.started_at = time.time()
        self.ready = False
        # Compression runs here, off the event loop: the codecs release the GIL.
        self.encoder = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="encode"
        )
        self._context = DestinationContext(settings, encoder=self.encoder)
        # Streams made through the API come back from the data dir beside the configs'.
        store = StreamStore(settings.data_dir)
        stored = stored_streams(store, [config.name for config in configs])
        self.streams: dict[str, DeliveryStream] = {
            config.name: self._stream(config) for config in configs
        }
        self.control = ControlPlane(
            settings,
            StreamRegistry(self.streams, self._stream, settings.data_dir),
            store,
            configs=configs,
            stored=stored,
            started_at=self.started_at,
            checks=CONFIG_CHECKS,
        )
        for config, version in self.control.api_configs():
            self.streams[config.name] = self._stream(config, version)
        # Started once every stream is open, stopped before any closes (see Source).
        self.sources: list[Source] = (
            build_sources(settings, self.streams) if sources is None else sources
        )
        self.telemetry = Telemetry(self.streams, list(self.sources), settings.quotas)
        self.control.registry.removed.append(self.telemetry.forget)
        self._runner: web.AppRunner | None = None
        self._lock_fd: int | None = None
        self._streams_opened = False
        self._sources_started: list[Source] = []

    def _stream(self, config: DeliveryStreamConfig, version: int = 1) -> DeliveryStream:
        """A stream with its destination, processing stage and error output, as configured;
        `version` is the stream version its S3 object names carry."""
        settings = self.settings
        context = replace(self._context, version=version)
        processing = ProcessingContext(
            stream_name=config.name,
            stream_arn=stream_arn(config.name, region=self.region, account_id=self.account_id),
            region=self.region,
            transform_mode=settings.transform_mode,
            transform_workers=settings.transform_workers,
            transform_timeout_seconds=settings.transform_timeout_seconds,
            transform_memory_mib=settings.transform_memory_mib,
            source_kinesis_stream_arn=kinesis_stream_arn(config),
        )
        return DeliveryStream(
            config,
            build_destination(config, context),
            data_dir=settings.data_dir,
            max_undelivered_bytes=settings.max_undelivered_bytes,
            segment_bytes=settings.wal_segment_mib * 1024 * 1024,
            stall_seconds=settings.stall_seconds,
            # Processors run in a process of their own: the API's core stays the API's.
            stage=RemoteStage(config, processing) if needs_stage(config) else None,
            error_output=build_error_output(config, context),
            source_backup=build_source_backup(config, context),
            max_active_partitions=settings.max_active_partitions,
            max_buffered_bytes=settings.max_partition_buffer_mib * 1024 * 1024,
            log_key_file=settings.log_key_file,
        )

    async def start(self) -> None:
        """Claim the data dir and bind the port, then say "listening" and replay the logs.

        What can stop a start (credentials file or TLS files unusable, data dir unwritable or
        in use, port taken) raises StartError before anything is served or logged as listening.
        """
        auth = self._authenticator()
        tls = server_context(self.settings.tls_cert, self.settings.tls_key)
        self._claim_data_dir()
        self.control.finish_deletes()
        await self._listen(auth, tls)
        scheme = "https" if tls is not None else "http"
        log.info("listening on %s://%s:%d", scheme, self.settings.host, self.settings.port)
        self._log_authentication(auth)
        self._streams_opened = True
        await asyncio.gather(*(stream.open() for stream in self.streams.values()))
        for source in self.sources:
            await source.start()
            self._sources_started.append(source)
        _settle_garbage_collector()
        self.telemetry.start()
        self.ready = True
        self.control.resume_deletes()
        for stream in self.streams.values():
            target = shown_target(stream.destination.target)
            log.info("stream %s ready: delivering to %s", stream.name, target)

    def _claim_data_dir(self) -> None:
        """Create the data dir, prove it writable and lock it against a second process."""
        data_dir = self.settings.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=data_dir, prefix=".write-check-"):
                pass
            fd = lock_exclusively(data_dir / DATA_DIR_LOCK)
        except OSError as exc:
            raise StartError(f"data dir {data_dir} is not writable: {_reason(exc)}") from None
        if fd is None:
            raise StartError(
                f"{data_dir} is in use by another firehose process: "
                "give each instance its own --data-dir"
            )
        self._lock_fd = fd

    def _authenticator(self) -> Authenticator | None:
        """The keys that may call the API, None when no credentials file is given."""
        path = self.settings.credentials_file
        if path is None:
            return None
        principals = load_credentials(path)
        return Authenticator(principals, region=self.region, account_id=self.account_id)

    def _log_authentication(self, auth: Authenticator | None) -> None:
        if auth is None:
            log.warning(
                "AUTHENTICATION IS OFF: every request is accepted unsigned, from anyone who can "
                "reach the port; give --credentials-file (FIREHOSE_CREDENTIALS_FILE) to require "
                "SigV4-signed requests"
            )
            return
        log.info(
            "authentication on: the %d keys of %s may call the API",
            len(auth.principals),
            self.settings.credentials_file,
        )

    async def _listen(self, auth: Authenticator | None, tls: ssl.SSLContext | None) -> None:
        limits = HttpLimits(
            keepalive_timeout=self.settings.keepalive_timeout_seconds,
            header_timeout=self.settings.header_timeout_seconds,
            body_timeout=self.settings.body_timeout_seconds,
            max_request_memory=self.settings.max_request_memory_bytes,
        )
        self._runner = FirehoseApi(self, limits, self.telemetry, auth, self.control).runner()
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            address = f"{self.settings.host}:{self.settings.port}"
            raise StartError(f"cannot listen on {address}: {_reason(exc)}") from None

    async def stop(self) -> bool:
        """Flush and deliver every stream; True if nothing was left behind in a log."""
        self.ready = False
        await self.telemetry.stop()
        await self.control.stop()
        while self._sources_started:
            source = self._sources_started.pop()
            try:
                await source.stop()
            except Exception:
                log.exception("source %s: stop failed", source.name)
        timeout = self.settings.shutdown_timeout_seconds
        opened = list(self.streams.values()) if self._streams_opened else []
        results = await asyncio.gather(*(s.close(timeout) for s in opened), return_exceptions=True)
        for stream, result in zip(opened, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stream %s: shutdown failed: %r", stream.name, result)
        if self._runner is not None:
            await self._runner.cleanup()
        self.encoder.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        return all(result is True for result in results)


def _reason(exc: OSError) -> str:
    """An OSError as a person reads it: "Address already in use", not "[Errno 98] ..."."""
    return exc.strerror or str(exc)


def raise_open_file_limit() -> None:
    """Every connection and log segment is a file descriptor: the default soft limit (often
    1024) would refuse connections long before the machine runs out of anything."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.debug("open-file limit stays %d: cannot raise it to %d: %s", soft, hard, exc)
        return
    log.debug("open-file limit raised from %d to %d", soft, hard)


def _settle_garbage_collector() -> None:
    """Keep full collections short: what start-up built (botocore's models, configs) lives
    for the whole run, so it is frozen out of the collector's scans, and young collections,
    which every request's parsed JSON triggers, run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run(settings: Settings) -> int:
    """Run the service on uvloop where it is installed (a faster event loop), else asyncio's."""
    raise_open_file_limit()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


async def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then flush, deliver and return the exit code.

    A second signal during shutdown exits at once with FORCED_EXIT_CODE; what was not delivered
    stays in the log and is delivered at the next start.
    """
    configs = load_configs(settings.config, CONFIG_CHECKS, allow_empty_folder=True)
    if not configs:
        log.info(
            "%s holds no delivery stream config: streams come from CreateDeliveryStream",
            settings.config,
        )
    service = Service(settings, configs)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stopping, settings)
    start = asyncio.create_task(service.start())
    await asyncio.wait([start, asyncio.create_task(stopping.wait())], return_when="FIRST_COMPLETED")
    if start.done() and start.exception() is not None:
        await service.stop()
        raise start.exception()  # type: ignore[misc]
    await stopping.wait()
    try:
        await start
    except Exception:
        log.exception("start-up failed; stopping what did start")
    delivered_all = await service.stop()
    log.info("stopped%s", "" if delivered_all else "; undelivered records stay in the log")
    return 0


def _on_signal(signum: int, stopping: asyncio.Event, settings: Settings) -> None:
    """The first signal starts a shutdown bounded by its timeout; the second ends it now."""
    name = signal.Signals(signum).name
    if not stopping.is_set():
        log.info(
            "%s: shutting down; delivering for up to %gs, then what is left stays in the log "
            "(send it again to exit at once)",
            name,
            settings.shutdown_timeout_seconds,
        )
        stopping.set()
        return
    log.warning(
        "%s again: exiting now; undelivered records stay in the log for the next start", name
    )
    logging.shutdown()
    sys.stderr.flush()
    # No cleanup on purpose: acknowledged records are on disk already, and closing streams
    # is exactly the wait that was just refused.
    os._exit(FORCED_EXIT_CODE)
