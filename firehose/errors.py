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
    └── ServiceUnavailableError         ServiceUnavailableException (503): retry later
    DeliveryError                       a destination could not take a batch (`retriable`)
    WalError                            the write-ahead log could not be written or read
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


class ServiceUnavailableError(FirehoseError):
    code = "ServiceUnavailableException"
    status = 503


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


class NotAcceptingError(Exception):
    """A stream was asked to take records before it opened or while it closes."""


class StartError(Exception):
    """The service cannot start (port in use, data dir unusable or locked); one line says why."""
