"""Who may call the API: SigV4-signed requests from the keys of a credentials file, each key
limited to the streams and actions its profile allows.

A request is checked in two steps, so that a request that can never pass is refused before its
body is read: `check` looks at the headers (a signature at all, its parts, the key, the clock),
`verify` at the signature over the whole request once the body is in. Errors are AWS's, word
for word where AWS's wording is known.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from firehose import sigv4
from firehose.credentials import Principal
from firehose.describe import stream_arn
from firehose.errors import (
    AccessDeniedError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

SERVICE = "firehose"
# How far a request's X-Amz-Date may be from our clock, either way, as AWS allows.
MAX_CLOCK_SKEW = timedelta(minutes=15)
# Bodies larger than this are hashed in a thread: hashlib lets go of the GIL while it hashes,
# so the event loop answers other requests meanwhile. Smaller ones (a 500-record batch of
# 250-byte records is ~170 KiB, ~0.1 ms of SHA-256) cost less to hash than to hand over.
HASH_INLINE_BYTES = 1024 * 1024
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
MISSING_TOKEN = "Missing Authentication Token"

# The verified caller of the request being answered; None while authentication is off.
CALLER: ContextVar[Caller | None] = ContextVar("firehose_caller", default=None)


@dataclass(frozen=True)
class Caller:
    """A verified caller: what its profile allows, and how AWS would name it in a refusal."""

    principal: Principal
    region: str
    account_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{self.principal.profile}"

    def authorize(self, action: str, stream: str | None) -> None:
        """AccessDeniedError unless the profile allows `action` on `stream` (on the action
        alone when the request names no stream)."""
        allowed = self.principal.may_perform(action) and (
            stream is None or self.principal.may_use_stream(stream)
        )
        if not allowed:
            resource = stream_arn(stream or "*", region=self.region, account_id=self.account_id)
            raise AccessDeniedError(
                f"User: {self.arn} is not authorized to perform: firehose:{action} "
                f"on resource: {resource}"
            )


def stream_visible(name: str) -> bool:
    """Whether the current caller may see stream `name` in a listing."""
    caller = CALLER.get()
    return caller is None or caller.principal.may_use_stream(name)


def authorize_body(caller: Caller | None, action: str, body: Mapping[str, Any]) -> None:
    """Authorize `action` on the stream a parsed request body names, if it names one."""
    if caller is not None:
        name = body.get("DeliveryStreamName")
        caller.authorize(action, name if isinstance(name, str) else None)


@dataclass(frozen=True)
class SignedRequest:
    """A request whose headers passed `Authenticator.check`; its signature is still unproven."""

    principal: Principal
    authorization: sigv4.Authorization
    amz_date: str


class Authenticator:
    """Checks requests against the keys of one credentials file."""

    def __init__(
        self,
        principals: Mapping[str, Principal],
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.principals = dict(principals)
        self.region = region
        self.account_id = account_id
        self._clock = clock

    def check(self, request: web.Request) -> SignedRequest:
        """What the headers alone can refuse: no signature, a malformed one, a scope that is
        not ours, an unknown key, a date too far from now."""
        header = request.headers.get("Authorization")
        if not header:
            raise MissingAuthenticationTokenError(MISSING_TOKEN)
        try:
            authorization = sigv4.parse_authorization(header)
        except sigv4.MalformedAuthorization as exc:
            raise IncompleteSignatureError(str(exc)) from None
        amz_date = request.headers.get("X-Amz-Date", "")
        signed_at = sigv4.parse_amz_date(amz_date)
        if signed_at is None:
            raise IncompleteSignatureError(
                "Authorization header requires existence of a valid 'X-Amz-Date' header "
                f"(yyyyMMddTHHmmssZ). Authorization={header}"
            )
        self._check_scope(authorization, amz_date)
        principal = self.principals.get(authorization.credential.access_key_id)
        if principal is None:
            raise UnrecognizedClientError(INVALID_TOKEN)
        self._check_clock(signed_at, amz_date)
        return SignedRequest(principal, authorization, amz_date)

    async def verify(self, signed: SignedRequest, request: web.Request, body: bytes) -> Caller:
        """The caller, once the signature over method, path, query, signed headers and body
        is the one its secret makes."""
        payload_hash = await _sha256_hex(body)
        sent_hash = request.headers.get("X-Amz-Content-Sha256")
        if sent_hash is not None and sent_hash != payload_hash:
            raise InvalidSignatureError(SIGNATURE_MISMATCH)
        authorization = signed.authorization
        names = authorization.signed_headers
        canonical = sigv4.canonical_request(
            request.method,
            sigv4.canonical_uri(request.rel_url.raw_path),
            sigv4.canonical_query(_query_pairs(request.rel_url.raw_query_string)),
            {name: request.headers.getall(name, []) for name in names},
            names,
            payload_hash,
        )
        scope = authorization.credential
        key = sigv4.signing_key(
            signed.principal.secret_access_key, scope.date, scope.region, scope.service
        )
        expected = sigv4.signature(
            key, sigv4.string_to_sign(signed.amz_date, scope.scope, canonical)
        )
        if not sigv4.signatures_match(expected, authorization.signature):
            raise InvalidSignatureError(SIGNATURE_MISMATCH)
        return Caller(signed.principal, self.region, self.account_id)

    def _check_scope(self, authorization: sigv4.Authorization, amz_date: str) -> None:
        credential = authorization.credential
        if credential.terminator != sigv4.TERMINATOR:
            raise InvalidSignatureError(
                f"Credential should be scoped with a valid terminator: '{sigv4.TERMINATOR}', "
                f"not '{credential.terminator}'."
            )
        if credential.service != SERVICE:
            raise InvalidSignatureError(
                f"Credential should be scoped to correct service: '{SERVICE}'."
            )
        if credential.region != self.region:
            raise InvalidSignatureError(
                f"Credential should be scoped to a valid region, not '{credential.region}'."
            )
        if credential.date != amz_date[:8]:
            raise InvalidSignatureError(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{credential.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        signed = authorization.signed_headers
        for required, shown in (("host", "Host"), ("x-amz-date", "X-Amz-Date")):
            if required not in signed:
                raise InvalidSignatureError(
                    f"'{shown}' must be a 'SignedHeader' in the AWS Authorization."
                )

    def _check_clock(self, signed_at: float, amz_date: str) -> None:
        now = self._clock()
        skew = MAX_CLOCK_SKEW.total_seconds()
        minutes = int(skew // 60)
        if signed_at < now - skew:
            raise InvalidSignatureError(
                f"Signature expired: {amz_date} is now earlier than "
                f"{sigv4.format_amz_date(now - skew)} "
                f"({sigv4.format_amz_date(now)} - {minutes} min.)"
            )
        if signed_at > now + skew:
            raise InvalidSignatureError(
                f"Signature not yet current: {amz_date} is still later than "
                f"{sigv4.format_amz_date(now + skew)} "
                f"({sigv4.format_amz_date(now)} + {minutes} min.)"
            )


async def _sha256_hex(body: bytes) -> str:
    """The body's SHA-256, computed once; off the event loop when it is large."""
    if len(body) <= HASH_INLINE_BYTES:
        return hashlib.sha256(body).hexdigest()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _hash_hex, body)


def _hash_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _query_pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs
