"""The service's exceptions.

    FirehoseError                       an error a caller sees: wire `__type` and HTTP status
    ├── ValidationError                 ValidationException: a model constraint broken (400)
    ├── SerializationError              SerializationException: not the JSON expected (400)
    ├── UnknownOperationError           UnknownOperationException (400)
    ├── InvalidArgumentError            InvalidArgumentException (400)
    ├── ResourceNotFoundError           ResourceNotFoundException (400)
    ├── ResourceInUseError              ResourceInUseException (400): name taken, stream busy
    ├── LimitExceededError              LimitExceededException (400): a quota is reached
    ├── ConcurrentModificationError     ConcurrentModificationException (400): stale version
    ├── RequestTimeoutError             RequestTimeoutException (408): body too slow
    ├── InvalidKMSResourceError         InvalidKMSResourceException (400): a log key is unusable
    ├── ServiceUnavailableError         ServiceUnavailableException (503): retry later
    ├── MissingAuthenticationTokenError MissingAuthenticationTokenException (403): unsigned
    ├── IncompleteSignatureError        IncompleteSignatureException (400): a SigV4 part missing
    ├── InvalidSignatureError           InvalidSignatureException (400): wrong or stale signature
    ├── UnrecognizedClientError         UnrecognizedClientException (400): unknown access key
    └── AccessDeniedError               AccessDeniedException (400): key not allowed that here
    DeliveryError                       a destination could not take a batch (`retriable`)
    WalError                            the write-ahead log could not be written or read
    LogKeyError                         a key of an encrypted log cannot be had (`kms_code`)
    NotAcceptingError                   a stream is not open, or closing: put nothing now
    StartError                          the service cannot start: port taken, data dir unusable

Lower-level errors (botocore, OSError, aiohttp) are mapped to these at the boundary where they
happen; only the API layer turns them into Firehose's wire shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FirehoseError(Exception):
    """An error with a Firehose wire code (`__type`) and HTTP status."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """The error's JSON body on the wire."""
        return {"__type": self.code, "message": self.message}


class ValidationError(FirehoseError):
    code = "ValidationException"
    status = 400

    @classmethod
    def from_problems(cls, problems: list[str]) -> ValidationError:
        """Join problems the way AWS does: `N validation errors detected: a; b`."""
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        return cls(f"{count} validation {noun} detected: " + "; ".join(problems))


class SerializationError(FirehoseError):
    code = "SerializationException"
    status = 400


class UnknownOperationError(FirehoseError):
    code = "UnknownOperationException"
    status = 400


class InvalidArgumentError(FirehoseError):
    code = "InvalidArgumentException"
    status = 400


class ResourceNotFoundError(FirehoseError):
    code = "ResourceNotFoundException"
    status = 400


class ResourceInUseError(FirehoseError):
    code = "ResourceInUseException"
    status = 400


class LimitExceededError(FirehoseError):
    code = "LimitExceededException"
    status = 400


class ConcurrentModificationError(FirehoseError):
    code = "ConcurrentModificationException"
    status = 400


class RequestTimeoutError(FirehoseError):
    # SDKs treat this code as transient and retry it.
    code = "RequestTimeoutException"
    status = 408


class InvalidKMSResourceError(FirehoseError):
    """A stream whose log key KMS (or the local key file) refused: `kms_code` says why, and is
    sent as the error's `code` member."""

    code = "InvalidKMSResourceException"
    status = 400

    def __init__(self, message: str, kms_code: str) -> None:
        super().__init__(message)
        self.kms_code = kms_code

    def body(self) -> dict[str, Any]:
        return {**super().body(), "code": self.kms_code}


class ServiceUnavailableError(FirehoseError):
    code = "ServiceUnavailableException"
    status = 503


class MissingAuthenticationTokenError(FirehoseError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignatureError(FirehoseError):
    code = "IncompleteSignatureException"
    status = 400


class InvalidSignatureError(FirehoseError):
    code = "InvalidSignatureException"
    status = 400


class UnrecognizedClientError(FirehoseError):
    code = "UnrecognizedClientException"
    status = 400


class AccessDeniedError(FirehoseError):
    code = "AccessDeniedException"
    status = 400


class DeliveryError(Exception):
    """A destination refused or was unreachable; `retriable` says whether trying again can help.

    `code` is Firehose's error code for it (`S3.NoSuchBucket`, `HttpEndpoint.ResponseTooLarge`),
    `output_type` the `!{firehose:error-output-type}` its records are filed under when the
    retry window runs out, `details` the keys that type adds to each error record
    (`httpEndpoint`).
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool = True,
        code: str = "InternalError",
        output_type: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.code = code
        self.output_type = output_type
        self.details: Mapping[str, Any] = details or {}


class WalError(Exception):
    """The write-ahead log failed (disk full, I/O error): the failed append is not acknowledged."""


class LogKeyError(Exception):
    """A data key of an encrypted log cannot be had: the local key file is missing or not the
    one the key was wrapped with, or KMS refused. `kms_code` is KMS's error code
    (`NotFoundException`, `DisabledException`, …), or ours for the local key file."""

    def __init__(self, message: str, kms_code: str = "NotFoundException") -> None:
        super().__init__(message)
        self.kms_code = kms_code


class NotAcceptingError(Exception):
    """A stream was asked to take records before it opened or while it closes."""


class StartError(Exception):
    """The service cannot start (port in use, data dir unusable or locked); one line says why."""
