"""Splunk HTTP Event Collector failures as Firehose's `Splunk.*` error codes.

No I/O here: a HEC reply (status and body) or a client exception goes in, a `DeliveryError`
filed under `splunk-failed` comes out. AWS publishes the codes but no mapping from HEC's own
reply codes; the table below is the closest reading of both lists.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import orjson

from firehose.errors import DeliveryError

OUTPUT_TYPE = "splunk-failed"

# HEC reply `code` -> Firehose error code. 11, 15 and 16 are in no AWS list: ours.
HEC_CODES: dict[int, str] = {
    1: "Splunk.DisabledToken",
    2: "Splunk.InvalidToken",
    3: "Splunk.InvalidToken",
    4: "Splunk.InvalidToken",
    5: "Splunk.InvalidDataFormat",
    6: "Splunk.InvalidDataFormat",
    7: "Splunk.InvalidIndex",
    8: "Splunk.ServerError",
    9: "Splunk.ServerError",
    10: "Splunk.DisabledAck",
    11: "Splunk.DisabledAck",
    12: "Splunk.InvalidDataFormat",
    13: "Splunk.InvalidDataFormat",
    14: "Splunk.DisabledAck",
    15: "Splunk.InvalidDataFormat",
    16: "Splunk.InvalidToken",
    18: "Splunk.ServerError",
    19: "Splunk.ServerError",
    20: "Splunk.ServerError",
}
# Errors a resend cannot fix until someone changes Splunk or the data. They are retried all the
# same (AWS retries every failure within the window), logged as errors, and not waited out at
# shutdown: the records stay in the log instead.
PERMANENT = frozenset(
    {
        "Splunk.DisabledToken",
        "Splunk.InvalidToken",
        "Splunk.InvalidDataFormat",
        "Splunk.InvalidIndex",
        "Splunk.DisabledAck",
        "Splunk.SSLUnverified",
    }
)


def splunk_error(code: str, message: str, *, secret: str = "") -> DeliveryError:
    """A `Splunk.*` failure; `secret` (the token) is blanked out of the message if it appears."""
    if secret:
        message = message.replace(secret, "<token>")
    return DeliveryError(
        message, retriable=code not in PERMANENT, code=code, output_type=OUTPUT_TYPE
    )


def reply_fields(body: bytes) -> dict[str, object] | None:
    """The JSON object HEC answers with, or None when the body is not one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def reply_error(status: int, body: bytes, *, secret: str = "") -> DeliveryError:
    """The error of a HEC reply that is not a success: by its `code`, else by its status."""
    fields = reply_fields(body)
    hec_code = fields.get("code") if fields is not None else None
    if isinstance(hec_code, int) and hec_code in HEC_CODES:
        code = HEC_CODES[hec_code]
    elif status >= 500:
        code = "Splunk.ServerError"
    elif status in (401, 403):
        code = "Splunk.InvalidToken"
    else:  # not a HEC answer at all: a wrong URL, or something else listening there
        code = "Splunk.InvalidEndpoint"
    text = fields.get("text") if fields is not None else body[:200].decode(errors="replace")
    detail = f" code {hec_code}" if hec_code is not None else ""
    extra = ""
    if fields is not None and "invalid-event-number" in fields:
        extra = f" (invalid-event-number {fields['invalid-event-number']})"
    return splunk_error(code, f"HEC answered {status}{detail}: {text}{extra}", secret=secret)


def connection_error(exc: BaseException, url: str) -> DeliveryError:
    """The error of a request that got no HEC reply: network and TLS failures, timeouts."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        code = "Splunk.SSLUnverified"
    elif isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        code = "Splunk.SSLHandshake"
    elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        code = "Splunk.ConnectionTimeout"
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        code = "Splunk.InvalidEndpoint"  # refused, unreachable, or no such host
    else:  # dropped mid-request: reset, disconnected, truncated reply
        code = "Splunk.ConnectionClosed"
    reason = str(exc) or type(exc).__name__
    return splunk_error(code, f"{url}: {reason}")
