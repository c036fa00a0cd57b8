"""AWS Signature Version 4, the server's half: read an `Authorization` header and compute the
signature a request should carry. No policy here (which keys, which clock skew): see auth.py.

The steps are AWS's: canonical request → string to sign → HMAC-SHA256 with a key derived from
the secret, the date, the region and the service.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_HEX = frozenset("0123456789abcdef")


class MalformedAuthorization(Exception):
    """The header lacks a part SigV4 needs; the message lists each, as AWS does."""


@dataclass(frozen=True)
class CredentialScope:
    """`<access key>/<yyyymmdd>/<region>/<service>/aws4_request` of a Credential parameter."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 …` header."""

    credential: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(header: str) -> Authorization:
    """The header's parts, or MalformedAuthorization naming each one missing."""
    algorithm, _, rest = header.strip().partition(" ")
    fields: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for part in rest.split(","):
            name, equals, value = part.strip().partition("=")
            if equals:
                fields[name] = value.strip()
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if missing:
        raise MalformedAuthorization(" ".join([*missing, f"Authorization={header}"]))
    parts = fields["Credential"].split("/")
    if len(parts) != 5 or not all(parts):
        raise MalformedAuthorization(
            "Credential should be <access key id>/<yyyyMMdd>/<region>/<service>/aws4_request, "
            f"not {fields['Credential']}"
        )
    return Authorization(
        credential=CredentialScope(*parts),
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )


@functools.lru_cache(maxsize=64)
def parse_amz_date(value: str) -> float | None:
    """`20261129T133045Z` as epoch seconds; None if it is not in that form. Kept: every request
    signed in the same second carries the same string, and strptime is slow."""
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def format_amz_date(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime(AMZ_DATE_FORMAT)


def canonical_uri(raw_path: str) -> str:
    """The path as every service but S3 signs it: dot segments removed, each segment
    percent-encoded once more over what the client sent."""
    normalized = posixpath.normpath(raw_path) if raw_path not in ("", "/") else "/"
    if raw_path.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    normalized = "/" + normalized.lstrip("/")
    return quote(normalized, safe="/~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded query parameters, encoded AWS's way and sorted by name, then value."""
    encoded = sorted(
        (quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~"))
        for name, value in pairs
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_headers(headers: Mapping[str, list[str]], signed: Iterable[str]) -> str:
    """`name:value` lines for the signed headers; repeated ones joined by commas, whitespace
    runs squeezed to one space."""
    lines = (
        f"{name}:{','.join(' '.join(value.split()) for value in headers.get(name, []))}\n"
        for name in signed
    )
    return "".join(lines)


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, list[str]],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    return "\n".join(
        (
            method,
            uri,
            query,
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key of one secret for one day, region and service: four HMACs, so kept."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    """Constant-time comparison; a signature that is not lowercase hex never matches."""
    if len(given) != len(expected) or not set(given) <= _HEX:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
