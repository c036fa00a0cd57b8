"""The running service: streams from configs, the API server, start-up and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from destinations import DestinationContext, build_destination
from firehose.api import FirehoseApi
from firehose.config import DeliveryStreamConfig
from firehose.config_load import load_configs
from firehose.settings import Settings
from firehose.source import Source
from firehose.stream import DeliveryStream

log = logging.getLogger(__name__)


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
        context = DestinationContext(settings, encoder=self.encoder)
        self.streams: dict[str, DeliveryStream] = {
            config.name: DeliveryStream(
                config,
                build_destination(config, context),
                data_dir=settings.data_dir,
                max_undelivered_bytes=settings.max_undelivered_bytes,
                segment_bytes=settings.wal_segment_mib * 1024 * 1024,
            )
            for config in configs
        }
        # Started once every stream is open, stopped before any closes (see Source).
        self.sources: list[Source] = sources or []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(FirehoseApi(self).app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        log.info("listening on http://%s:%d", self.settings.host, self.settings.port)
        await asyncio.gather(*(stream.open() for stream in self.streams.values()))
        for source in self.sources:
            await source.start()
        _settle_garbage_collector()
        self.ready = True
        for stream in self.streams.values():
            log.info("stream %s ready: delivering to %s", stream.name, stream.destination.target)

    async def stop(self) -> bool:
        """Flush and deliver every stream; True if nothing was left behind in a log."""
        self.ready = False
        for source in reversed(self.sources):
            try:
                await source.stop()
            except Exception:
                log.exception("source %s: stop failed", source.name)
        timeout = self.settings.shutdown_timeout_seconds
        results = await asyncio.gather(
            *(s.close(timeout) for s in self.streams.values()), return_exceptions=True
        )
        for stream, result in zip(self.streams.values(), results, strict=True):
            if isinstance(result, BaseException):
                log.error("stream %s: shutdown failed: %r", stream.name, result)
        if self._runner is not None:
            await self._runner.cleanup()
        self.encoder.shutdown(wait=True)
        return all(result is True for result in results)


def _settle_garbage_collector() -> None:
    """Keep full collections short: what start-up built (botocore's models, configs) lives
    for the whole run, so it is frozen out of the collector's scans, and young collections,
    which every request's parsed JSON triggers, run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run(settings: Settings) -> int:
    """Run the service on uvloop where it is installed (a faster event loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


async def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then flush, deliver and return the exit code."""
    service = Service(settings, load_configs(settings.config))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    start = asyncio.create_task(service.start())
    await asyncio.wait([start, asyncio.create_task(stopping.wait())], return_when="FIRST_COMPLETED")
    if start.done() and start.exception() is not None:
        await service.stop()
        raise start.exception()  # type: ignore[misc]
    await stopping.wait()
    log.info("shutting down: flushing every buffer")
    try:
        await start
    except Exception:
        log.exception("start-up failed; stopping what did start")
    delivered_all = await service.stop()
    log.info("stopped%s", "" if delivered_all else "; undelivered records stay in the log")
    return 0
