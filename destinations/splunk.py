"""Splunk destination: each batch POSTed to a HTTP Event Collector, delivered once indexed.

A batch counts as delivered only when HEC's indexer acknowledgement for it turns true, as
Firehose requires; any failure is raised for the stream to retry the whole batch by the
section's `RetryOptions`, after which its records are filed as `splunk-failed`.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from destinations.hec_errors import connection_error, reply_error, reply_fields, splunk_error
from firehose.batch import Batch
from firehose.config import SplunkConfiguration
from firehose.destination import DELIVERED, DeliveryResult, DestinationCounters
from firehose.errors import DeliveryError

# Channels are GUIDs; deriving them from the stream name keeps one stable channel per stream.
CHANNEL_NAMESPACE = uuid.UUID("9f4a3a56-6d0c-4b4e-9a55-3f1f52c6c0de")
REQUEST_TIMEOUT_SECONDS = 180.0  # what AWS gives an HTTP endpoint to answer
CONNECT_TIMEOUT_SECONDS = 10.0
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 2.0


def stream_channel(stream_name: str) -> str:
    """The HEC data channel of a stream: the same on every start, so acks stay per stream."""
    return str(uuid.uuid5(CHANNEL_NAMESPACE, f"firehose/{stream_name}"))


class SplunkDestination:
    """Sends a batch's records concatenated (no delimiter) to `/services/collector/raw` or
    `/event`, then polls `/services/collector/ack` until its ackId is true or the ack timeout.

    One HTTP session per destination: connections are reused, and its cookie jar holds the
    channel's cookies so a sticky load balancer sends the ack polls to the indexer that took
    the data.
    """

    kind = "Splunk"

    def __init__(
        self,
        stream_name: str,
        config: SplunkConfiguration,
        *,
        ack_timeout: float | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self.channel = stream_channel(stream_name)
        endpoint = config.hec_endpoint
        self.url = f"{endpoint}/services/collector/{config.hec_endpoint_type.lower()}"
        self.ack_url = f"{endpoint}/services/collector/ack"
        self.ack_timeout = (
            float(config.hec_acknowledgment_timeout_in_seconds)
            if ack_timeout is None
            else ack_timeout
        )
        self.request_timeout = request_timeout
        self.expected_wait_seconds = self.ack_timeout  # waiting for the ack is not a stall
        self.target = f"Splunk HEC {self.url} (channel {self.channel})"
        self.counters = DestinationCounters(self.kind)
        self.last_ack_latency: float | None = None  # seconds, send to ack: DataAckLatency
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # unsafe: keep cookies of IP-addressed endpoints too (a balancer by address).
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                headers={
                    "Authorization": f"Splunk {self.config.token}",
                    "X-Splunk-Request-Channel": self.channel,
                },
            )

    async def deliver(self, batch: Batch) -> DeliveryResult:
        await self.start()
        sent = time.monotonic()
        ack_id = await self._send(b"".join(batch.chunks()))
        await self._await_ack(ack_id)
        self.last_ack_latency = time.monotonic() - sent
        return DELIVERED

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _post(self, url: str, body: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        assert self._session is not None
        limit = aiohttp.ClientTimeout(
            total=timeout or self.request_timeout, sock_connect=CONNECT_TIMEOUT_SECONDS
        )
        try:
            # Redirects are answers HEC never gives: not followed, so the token goes nowhere else.
            async with self._session.post(
                url, data=body, timeout=limit, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, url) from exc

    async def _send(self, body: bytes) -> int:
        """POST the records; the ackId HEC gives them."""
        status, reply = await self._post(self.url, body)
        fields = reply_fields(reply)
        if status != 200 or fields is None or fields.get("code", 0) != 0:
            raise reply_error(status, reply, secret=self.config.token)
        ack_id = fields.get("ackId")
        if not isinstance(ack_id, int):
            raise splunk_error(
                "Splunk.DisabledAck",
                "HEC took the data without an ackId: turn on indexer acknowledgement for the "
                "token (the data may be indexed; a retry sends it again)",
            )
        return ack_id

    async def _await_ack(self, ack_id: int) -> None:
        """Poll until `ack_id` is true. A poll that fails in a way that may pass (busy, dropped
        connection) is polled again until the ack timeout; HEC forgets a true once reported."""
        deadline = time.monotonic() + self.ack_timeout
        delay = FIRST_POLL_SECONDS
        last_problem = ""
        while True:
            try:
                if await self._poll(ack_id, deadline):
                    return
            except DeliveryError as exc:
                if not exc.retriable:
                    raise
                last_problem = f"; last poll: {exc}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise splunk_error(
                    "Splunk.AckTimeout",
                    f"no indexer acknowledgement for ackId {ack_id} on channel {self.channel} "
                    f"within {self.ack_timeout:g}s (the data may still be indexed: a retry may "
                    f"duplicate it){last_problem}",
                    secret=self.config.token,
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_SECONDS)

    async def _poll(self, ack_id: int, deadline: float) -> bool:
        body = b'{"acks":[%d]}' % ack_id
        # A poll does not outlast the ack timeout by more than a connect attempt.
        timeout = min(
            self.request_timeout, max(deadline - time.monotonic(), CONNECT_TIMEOUT_SECONDS)
        )
        url = f"{self.ack_url}?channel={self.channel}"
        status, reply = await self._post(url, body, timeout)
        fields = reply_fields(reply)
        acks = fields.get("acks") if fields is not None else None
        if status != 200 or not isinstance(acks, dict):
            raise reply_error(status, reply, secret=self.config.token)
        return acks.get(str(ack_id)) is True
