"""How the stream retries a destination."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How the stream retries a destination: backoff, and an optional retry window.

    `deadline_seconds` None retries until the batch is taken (S3: nothing is dropped for age).
    With a deadline (the non-S3 destinations' `RetryOptions.DurationInSeconds`), the records
    still failing when the window, measured from the first attempt, has passed go to the error
    output and the stream moves on, as Firehose does.

    Jitter is added (up to `added_jitter_seconds`) unless `jitter_factors` is given: the backoff
    is then multiplied by a random factor between the two bounds and capped afterwards, as the
    HTTP endpoint's `min(120 s, 1 s * 2^n * random(0.85, 1.15))` states it.
    """

    deadline_seconds: float | None = None
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    added_jitter_seconds: float = 0.5
    jitter_factors: tuple[float, float] | None = None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), before jitter."""
        return min(self._doubled(attempt), self.max_backoff_seconds)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt`, jitter included."""
        if self.jitter_factors is None:
            return self.backoff(attempt) + random.uniform(0, self.added_jitter_seconds)
        low, high = self.jitter_factors
        return min(self._doubled(attempt) * random.uniform(low, high), self.max_backoff_seconds)

    def _doubled(self, attempt: int) -> float:
        # The exponent stops growing long past any cap: 2.0 ** 1024 would overflow after hours of
        # retrying at the cap.
        return float(self.initial_backoff_seconds * 2.0 ** min(attempt - 1, 64))
