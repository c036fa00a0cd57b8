"""How the stream retries a destination."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How the stream retries a destination: backoff, and an optional retry window.

    `deadline_seconds` None retries until the batch is taken (S3: nothing is dropped for age).
    With a deadline (the non-S3 destinations' `RetryOptions.DurationInSeconds`), the records
    still failing when the window, measured from the first attempt, has passed go to the error
    output and the stream moves on, as Firehose does.
    """

    deadline_seconds: float | None = None
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), before jitter."""
        backoff: float = self.initial_backoff_seconds * 2.0 ** (attempt - 1)
        return min(backoff, self.max_backoff_seconds)
