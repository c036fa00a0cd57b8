"""The Splunk destination against a HEC receiver on 127.0.0.1: what it sends, how it waits for
the indexer ack, and which `Splunk.*` code each HEC answer or network failure becomes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from destinations.hec_errors import HEC_CODES, reply_error
from destinations.splunk import SplunkDestination, stream_channel
from firehose.batch import Batch, RecordRun
from firehose.config import DeliveryStreamConfig, SplunkConfiguration
from firehose.errors import DeliveryError
from firehose.testing.tls import self_signed_certificate
from tests.hec_receiver import HecReceiver

TOKEN = HecReceiver().token


@pytest.fixture
async def hec() -> AsyncIterator[tuple[HecReceiver, str]]:
    receiver = HecReceiver()
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield receiver, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def splunk_section(endpoint: str, kind: str = "Raw", **extra: Any) -> SplunkConfiguration:
    config = DeliveryStreamConfig.model_validate(
        {
            "DeliveryStreamName": "logs",
            "SplunkDestinationConfiguration": {
                "HECEndpoint": endpoint,
                "HECEndpointType": kind,
                "HECToken": TOKEN,
                "S3Configuration": {"BucketARN": "arn:aws:s3:::backup"},
                **extra,
            },
        }
    )
    assert isinstance(config.destination, SplunkConfiguration)
    return config.destination


def batch_of(*records: bytes) -> Batch:
    data = memoryview(b"".join(records))
    batch = Batch()
    batch.add(RecordRun(1, 1_700_000_000_000, [len(r) for r in records], data))
    return batch


async def deliver(destination: SplunkDestination, *records: bytes) -> None:
    await destination.start()
    try:
        await destination.deliver(batch_of(*records))
    finally:
        await destination.close()


async def failure(destination: SplunkDestination, *records: bytes) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await deliver(destination, *records or (b"x\n",))
    assert caught.value.output_type == "splunk-failed"
    assert TOKEN not in str(caught.value)
    return caught.value


# ---- what is sent --------------------------------------------------------------------------


async def test_raw_records_go_concatenated_with_token_and_channel(
    hec: tuple[HecReceiver, str],
) -> None:
    receiver, url = hec
    destination = SplunkDestination("logs", splunk_section(url))
    await deliver(destination, b"first line\n", b"second", b" line\n")
    assert receiver.raw == [b"first line\nsecond line\n"]
    [(path, headers), (ack_path, _), *_] = receiver.requests
    assert path == "/services/collector/raw"
    assert ack_path == "/services/collector/ack"
    assert headers["Authorization"] == f"Splunk {TOKEN}"
    assert headers["X-Splunk-Request-Channel"] == stream_channel("logs")
    assert destination.last_ack_latency is not None
    assert TOKEN not in destination.target


def test_a_stream_keeps_its_channel() -> None:
    assert stream_channel("logs") == stream_channel("logs") != stream_channel("other")


async def test_event_records_each_hold_one_or_more_hec_events(
    hec: tuple[HecReceiver, str],
) -> None:
    receiver, url = hec
    destination = SplunkDestination("logs", splunk_section(url, "Event"))
    await deliver(
        destination,
        b'{"event": "one", "sourcetype": "app"}\n{"event": {"n": 2}}\n',
        b'{"event": "three", "time": 1700000000}',
    )
    assert receiver.events == ["one", {"n": 2}, "three"]
    assert receiver.requests[0][0] == "/services/collector/event"


async def test_event_records_that_are_not_hec_events_are_invalid_data(
    hec: tuple[HecReceiver, str],
) -> None:
    _, url = hec
    destination = SplunkDestination("logs", splunk_section(url, "Event"))
    error = await failure(destination, b'{"event": "ok"}', b"plain text, no event object\n")
    assert error.code == "Splunk.InvalidDataFormat"
    assert "code 6" in str(error) and "invalid-event-number 1" in str(error)
    assert not error.retriable  # retried all the same, but reported as needing a fix


async def test_one_session_reuses_its_connection(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    destination = SplunkDestination("logs", splunk_section(url))
    await destination.start()
    for n in range(5):
        await destination.deliver(batch_of(b"record %d\n" % n))
    await destination.close()
    assert len(receiver.raw) == 5
    assert len(receiver.peers) == 1


async def test_acks_are_polled_until_true(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    receiver.ack_delay = 0.4
    destination = SplunkDestination("logs", splunk_section(url))
    await deliver(destination, b"slow to index\n")
    polls = [path for path, _ in receiver.requests if path.endswith("/ack")]
    assert len(polls) > 1
    assert destination.last_ack_latency is not None and destination.last_ack_latency >= 0.4


async def test_sticky_balancer_cookies_follow_the_channel(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    receiver.sticky = True
    await deliver(SplunkDestination("logs", splunk_section(url)), b"behind an ELB\n")
    assert receiver.raw == [b"behind an ELB\n"]


# ---- HEC's answers ---------------------------------------------------------------------------


async def test_ack_never_true_is_an_ack_timeout(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    receiver.acks_never_true = True
    destination = SplunkDestination("logs", splunk_section(url), ack_timeout=0.3)
    error = await failure(destination)
    assert error.code == "Splunk.AckTimeout"
    assert error.retriable
    assert receiver.raw == [b"x\n"]  # indexed all the same: a retry may duplicate


def test_the_ack_timeout_comes_from_the_section() -> None:
    section = splunk_section("http://h:8088", HECAcknowledgmentTimeoutInSeconds=300)
    assert SplunkDestination("logs", section).ack_timeout == 300


@pytest.mark.parametrize(
    ("switch", "code"),
    [
        ("token_disabled", "Splunk.DisabledToken"),
        ("busy", "Splunk.ServerError"),
    ],
)
async def test_hec_failures_on_demand(hec: tuple[HecReceiver, str], switch: str, code: str) -> None:
    receiver, url = hec
    setattr(receiver, switch, True)
    error = await failure(SplunkDestination("logs", splunk_section(url)))
    assert error.code == code
    assert receiver.raw == []


async def test_a_wrong_token_is_an_invalid_token(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    receiver.token = "another-token"
    error = await failure(SplunkDestination("logs", splunk_section(url)))
    assert error.code == "Splunk.InvalidToken"
    assert "403 code 4: Invalid token" in str(error)


async def test_a_token_without_acks_is_disabled_ack(hec: tuple[HecReceiver, str]) -> None:
    receiver, url = hec
    receiver.ack_enabled = False
    error = await failure(SplunkDestination("logs", splunk_section(url)))
    assert error.code == "Splunk.DisabledAck"


async def test_a_url_that_is_no_hec_is_an_invalid_endpoint(hec: tuple[HecReceiver, str]) -> None:
    _, url = hec
    error = await failure(SplunkDestination("logs", splunk_section(f"{url}/not/hec")))
    assert error.code == "Splunk.InvalidEndpoint"


@pytest.mark.parametrize(
    ("status", "hec_code", "code"),
    [
        (403, 1, "Splunk.DisabledToken"),
        (401, 2, "Splunk.InvalidToken"),
        (401, 3, "Splunk.InvalidToken"),
        (403, 4, "Splunk.InvalidToken"),
        (400, 5, "Splunk.InvalidDataFormat"),
        (400, 6, "Splunk.InvalidDataFormat"),
        (400, 7, "Splunk.InvalidIndex"),
        (500, 8, "Splunk.ServerError"),
        (503, 9, "Splunk.ServerError"),
        (400, 10, "Splunk.DisabledAck"),
        (400, 12, "Splunk.InvalidDataFormat"),
        (400, 13, "Splunk.InvalidDataFormat"),
        (400, 14, "Splunk.DisabledAck"),
        (503, 18, "Splunk.ServerError"),
        (503, 19, "Splunk.ServerError"),
        (503, 20, "Splunk.ServerError"),
        (502, None, "Splunk.ServerError"),
        (404, None, "Splunk.InvalidEndpoint"),
    ],
)
def test_hec_codes(status: int, hec_code: int | None, code: str) -> None:
    body = b"<html>bad gateway</html>" if hec_code is None else b'{"text":"t","code":%d}' % hec_code
    error = reply_error(status, body)
    assert error.code == code
    assert error.output_type == "splunk-failed"
    assert (hec_code is None) or HEC_CODES[hec_code] == code


def test_the_token_never_reaches_an_error_message() -> None:
    error = reply_error(400, b'{"text":"bad token %s","code":4}' % TOKEN.encode(), secret=TOKEN)
    assert TOKEN not in str(error)


async def test_a_poll_that_fails_for_a_while_is_polled_again(
    hec: tuple[HecReceiver, str],
) -> None:
    receiver, url = hec
    receiver.ack_delay = 0.3
    destination = SplunkDestination("logs", splunk_section(url), ack_timeout=5)

    async def busy_for_a_moment() -> None:
        await asyncio.sleep(0.05)
        receiver.busy = True
        await asyncio.sleep(0.3)
        receiver.busy = False

    await asyncio.gather(deliver(destination, b"x\n"), busy_for_a_moment())
    assert receiver.raw == [b"x\n"]


# ---- the network ---------------------------------------------------------------------------


async def test_nothing_listening_is_an_invalid_endpoint() -> None:
    from firehose.testing.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    error = await failure(SplunkDestination("logs", splunk_section(url)))
    assert error.code == "Splunk.InvalidEndpoint"
    assert error.retriable  # HEC may just be down


async def raw_server(handle: Any) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


async def test_a_dropped_connection_is_connection_closed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, address = await raw_server(hang_up)
    async with server:
        error = await failure(SplunkDestination("logs", splunk_section(f"http://{address}")))
    assert error.code == "Splunk.ConnectionClosed"


async def test_no_answer_is_a_connection_timeout() -> None:
    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server, address = await raw_server(say_nothing)
    async with server:
        destination = SplunkDestination(
            "logs", splunk_section(f"http://{address}"), request_timeout=0.3
        )
        error = await failure(destination)
    assert error.code == "Splunk.ConnectionTimeout"


async def test_tls_to_a_plain_port_is_an_ssl_handshake_failure(
    hec: tuple[HecReceiver, str],
) -> None:
    _, url = hec
    https = url.replace("http://", "https://")
    error = await failure(SplunkDestination("logs", splunk_section(https)))
    assert error.code == "Splunk.SSLHandshake"


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[ssl.SSLContext]:
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    yield context


async def test_an_untrusted_certificate_is_ssl_unverified(self_signed: ssl.SSLContext) -> None:
    receiver = HecReceiver()
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed)
    await site.start()
    try:
        url = f"https://127.0.0.1:{runner.addresses[0][1]}"
        error = await failure(SplunkDestination("logs", splunk_section(url)))
    finally:
        await runner.cleanup()
    assert error.code == "Splunk.SSLUnverified"
    assert receiver.raw == []
