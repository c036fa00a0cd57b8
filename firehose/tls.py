"""HTTPS for the API: the server's TLS context from a PEM certificate and key."""

from __future__ import annotations

import ssl
from pathlib import Path

from firehose.errors import StartError


def server_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The TLS context to serve with, None for plain HTTP; StartError when the files cannot
    be used (missing, unreadable, not PEM, a key that is not the certificate's)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise StartError("--tls-cert and --tls-key go together: give both or neither")
    for what, path in (("certificate", cert), ("key", key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise StartError(f"TLS {what} {path}: {exc.strerror or exc}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        # The reason (KEY_VALUES_MISMATCH, …) says the most; "PEM lib" errors carry none.
        reason = exc.reason.lower().replace("_", " ") if exc.reason else "not usable PEM"
        raise StartError(f"TLS certificate {cert} with key {key}: {reason}") from None
    return context
