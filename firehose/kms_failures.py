"""How a key that cannot be used is described: KMS's error codes as Firehose's failure types."""

from __future__ import annotations

from firehose.errors import LogKeyError

# KMS error code -> `FailureDescription.Type`.
_TYPES = {
    "NotFoundException": "KMS_KEY_NOT_FOUND",
    "AccessDeniedException": "KMS_ACCESS_DENIED",
    "DisabledException": "DISABLED_KMS_KEY",
    "InvalidStateException": "INVALID_KMS_KEY",
}


def key_failure_description(exc: LogKeyError) -> dict[str, str]:
    """`{Type, Details}` for a key KMS refused (UNKNOWN_ERROR for a code without a type)."""
    return {"Type": _TYPES.get(exc.kms_code, "UNKNOWN_ERROR"), "Details": str(exc)}
