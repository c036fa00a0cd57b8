"""Requests signed as botocore signs them, for tests and benchmarks that send raw HTTP."""

from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "Firehose_20150804."
CONTENT_TYPE = "application/x-amz-json-1.1"


def signed_headers(
    url: str,
    operation: str,
    body: bytes,
    *,
    key_id: str,
    secret: str,
    region: str = "us-east-1",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a Firehose API POST of `body` to `url`, signed now with botocore's SigV4
    (`extra` headers are signed too)."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "X-Amz-Target": TARGET_PREFIX + operation,
            "Content-Type": CONTENT_TYPE,
            **(extra or {}),
        },
    )
    SigV4Auth(Credentials(key_id, secret), "firehose", region).add_auth(request)
    return dict(request.headers.items())
