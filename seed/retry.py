"""What is worth retrying, and how long to wait: capped exponential backoff with full jitter.

Retried: no answer (reset, refused, timeout), 5xx, 429. Any other 4xx is the request's own fault
and final. A server's Retry-After wins over a shorter backoff.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .work import Result

MAX_RETRY_AFTER_S = 60.0


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    @staticmethod
    def retryable(result: Result) -> bool:
        return not result.ok and (result.status == 0 or result.status == 429 or 500 <= result.status <= 599)

    @staticmethod
    def outcome_unknown(result: Result) -> bool:
        """No answer, and not because the connection was refused: the upload may have been stored."""
        return not result.ok and result.status == 0 and "refused" not in result.error.lower()

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Wait before the next try, after `attempt` tries so far (1 = the first failed)."""
        delay = self.rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay
