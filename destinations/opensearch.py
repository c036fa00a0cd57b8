"""OpenSearch / Elasticsearch destination: each batch as one `_bulk` request.

The answer is read item by item: documents the cluster was too busy for (429, 5xx) are handed
back for the stream to retry alone; documents it refused (mapping or version conflicts, 4xx)
are filed at once with the cluster's reason. A request that fails as a whole is raised.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from destinations.bulk import OUTPUT_TYPE, BulkWriter
from destinations.index_rotation import index_namer
from firehose.batch import Batch
from firehose.config import ElasticsearchConfiguration, OpenSearchConfiguration
from firehose.destination import DeliveryResult, DestinationCounters
from firehose.errors import DeliveryError

REQUEST_TIMEOUT_SECONDS = 120.0
CONNECT_TIMEOUT_SECONDS = 10.0
HEADERS = {"Content-Type": "application/x-ndjson", "Accept": "application/json"}


def tls_context(config: OpenSearchConfiguration) -> ssl.SSLContext | bool:
    """The TLS settings for the cluster: a CA file of its own, or verification off (ours)."""
    if not config.verify_tls:
        return False
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return True


class OpenSearchDestination:
    """Posts each batch to `<ClusterEndpoint>/_bulk` over one HTTP session (connections kept).

    Document ids are fixed by the batch and the record (FIREHOSE_DEFAULT), so a retried
    document overwrites the one an earlier attempt may have indexed.
    """

    def __init__(
        self,
        stream_name: str,
        config: OpenSearchConfiguration,
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self.kind = config.kind
        self.code_prefix = "ES" if isinstance(config, ElasticsearchConfiguration) else "OS"
        self.url = f"{config.endpoint}/_bulk"
        self.target = f"{config.endpoint} index {config.index_name} (stream {stream_name})"
        self.counters = DestinationCounters(self.kind)
        self.request_timeout = request_timeout
        self.writer = BulkWriter(
            index_namer(config.index_name, config.index_rotation_period),
            type_name=config.type_name,
            document_ids=config.document_ids,
            code_prefix=self.code_prefix,
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            headers = dict(HEADERS)
            if self.config.username:
                password = self.config.password.get_secret_value() if self.config.password else ""
                headers["Authorization"] = aiohttp.encode_basic_auth(self.config.username, password)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls_context(self.config)), headers=headers
            )

    async def deliver(self, batch: Batch) -> DeliveryResult:
        await self.start()
        request = self.writer.build(batch)
        if not request.sent:
            return DeliveryResult(list(request.refused))
        status, reply = await self._post(request.body)
        if status != 200:
            raise self._reply_error(status, reply)
        failed = self.writer.failures(reply, request.sent)
        if failed is None:
            raise self._error(
                f"{self.code_prefix}.ClusterError",
                f"{self.url} answered 200 without a bulk answer for each document: "
                f"{reply[:200].decode(errors='replace')}",
            )
        return DeliveryResult(request.refused + failed)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        assert self._session is not None
        limit = aiohttp.ClientTimeout(
            total=self.request_timeout, sock_connect=CONNECT_TIMEOUT_SECONDS
        )
        try:
            # Not followed: credentials go to the configured endpoint only.
            async with self._session.post(
                self.url, data=body, timeout=limit, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._connection_error(exc) from exc

    def _error(self, code: str, message: str, *, retriable: bool = True) -> DeliveryError:
        return DeliveryError(message, retriable=retriable, code=code, output_type=OUTPUT_TYPE)

    def _reply_error(self, status: int, reply: bytes) -> DeliveryError:
        """A whole request refused: busy or broken (429, 5xx) may pass; other 4xx will not."""
        text = reply[:300].decode(errors="replace")
        retriable = status == 429 or status >= 500
        return self._error(
            str(status), f"{self.url} answered {status}: {text}", retriable=retriable
        )

    def _connection_error(self, exc: BaseException) -> DeliveryError:
        prefix = self.code_prefix
        if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLError):
            code = f"{prefix}.SSLError"
        elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
            code = f"{prefix}.RequestTimeout"
        elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
            code = f"{prefix}.ConnectionFailed"
        else:  # dropped mid-request
            code = f"{prefix}.ConnectionReset"
        return self._error(code, f"{self.url}: {exc or type(exc).__name__}")
