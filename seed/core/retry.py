"""What is retried, and when: capped exponential backoff with full jitter, within a budget of time.

Retried: no answer (reset, refused, timeout), 5xx, 429. Any other 4xx is the request's own fault and
final. A server's Retry-After wins over a shorter backoff. The budget is in time, not only in tries:
a restart of Kanta takes ~10 s, and a handful of sub-second backoffs (about 3 s in all) gave up on
every image during one. This policy is the one owner of the attempt limit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from seed.core.work import Result

MAX_RETRY_AFTER_S = 60.0


@dataclass
class RetryPolicy:
    max_attempts: int = 30
    retry_for_s: float = 60.0
    base_s: float = 0.25
    cap_s: float = 4.0
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

    def next_try_in(
        self, result: Result, attempts: int, failing_since: float | None, now: float
    ) -> float | None:
        """Seconds until the next try of an image whose latest attempt failed, or None to give up.

        attempts: tries so far, this one included; failing_since: when its first failure was seen
        (None: this is the first).
        """
        if not self.retryable(result) or attempts >= self.max_attempts:
            return None
        delay = self.backoff_s(attempts, result.retry_after_s)
        spent = now - (failing_since if failing_since is not None else now)
        if spent + delay > self.retry_for_s:
            # One last try at the end of the budget, unless the budget is already gone.
            return None if spent >= self.retry_for_s else self.retry_for_s - spent
        return delay
