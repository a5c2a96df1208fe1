"""Unit tests for the retry policy: what is retried, the backoff, and the budget in tries and in time."""

from __future__ import annotations

import random

import pytest

from seed.core.retry import MAX_RETRY_AFTER_S, RetryPolicy
from seed.core.work import Result


class Longest(random.Random):
    """Full jitter at its ceiling, so a backoff is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def failed(status: int = 503, retry_after_s: float | None = None, error: str = "") -> Result:
    return Result(index=0, ok=False, status=status, error=error, retry_after_s=retry_after_s)


@pytest.mark.parametrize(
    ("status", "error", "retry"),
    [(0, "connection closed.", True), (0, "Connection refused", True), (500, "", True), (503, "", True),
     (599, "", True), (429, "", True), (400, "", False), (404, "", False), (413, "", False),
     (422, "", False), (202, "", False), (600, "", False)],
)  # fmt: skip
def test_what_is_retried(status, error, retry):
    assert RetryPolicy.retryable(Result(index=0, ok=status == 202, status=status, error=error)) is retry


def test_a_refused_connection_cannot_have_stored_anything():
    assert RetryPolicy.outcome_unknown(failed(0, error="connection closed."))
    assert RetryPolicy.outcome_unknown(failed(0, error="timed out"))
    assert not RetryPolicy.outcome_unknown(failed(0, error="[Errno 111] Connection refused"))
    assert not RetryPolicy.outcome_unknown(failed(503))
    assert not RetryPolicy.outcome_unknown(Result(index=0, ok=True, status=202, uuid="u"))


def test_backoff_is_capped_exponential_with_jitter_and_honours_retry_after():
    p = RetryPolicy(base_s=0.1, cap_s=1.0, rng=random.Random(1))
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [p.backoff_s(attempt) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
    assert p.backoff_s(1, retry_after_s=2.5) == 2.5
    assert p.backoff_s(1, retry_after_s=10_000) == MAX_RETRY_AFTER_S
    longest = RetryPolicy(base_s=0.5, cap_s=4.0, rng=Longest())
    assert longest.backoff_s(3, retry_after_s=0.1) == 2.0  # a shorter Retry-After does not shorten it


def test_next_try_in_gives_up_after_max_attempts():
    p = RetryPolicy(max_attempts=3, retry_for_s=1000, base_s=1.0, cap_s=4.0, rng=Longest())
    assert p.next_try_in(failed(), 1, None, 0.0) == 1.0
    assert p.next_try_in(failed(), 2, 0.0, 1.0) == 2.0
    assert p.next_try_in(failed(), 3, 0.0, 3.0) is None
    assert p.next_try_in(failed(), 4, 0.0, 3.0) is None


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
def test_next_try_in_never_retries_a_request_kanta_refused(status):
    assert RetryPolicy(rng=Longest()).next_try_in(failed(status), 1, None, 0.0) is None


def test_next_try_in_takes_a_last_try_at_the_end_of_the_budget():
    p = RetryPolicy(max_attempts=100, retry_for_s=60.0, base_s=4.0, cap_s=4.0, rng=Longest())
    assert p.next_try_in(failed(), 5, 100.0, 150.0) == 4.0  # 50 s spent: 4 s more fits
    assert p.next_try_in(failed(), 6, 100.0, 158.0) == pytest.approx(2.0)  # cut to the budget's end
    assert p.next_try_in(failed(), 7, 100.0, 160.0) is None  # the budget is gone
    assert p.next_try_in(failed(), 7, 100.0, 175.0) is None


def test_next_try_in_counts_the_budget_from_the_first_failure():
    p = RetryPolicy(retry_for_s=10.0, base_s=4.0, cap_s=4.0, rng=Longest())
    assert p.next_try_in(failed(), 1, None, 1_000.0) == 4.0  # no failure before this one: nothing spent
    assert p.next_try_in(failed(), 2, 995.0, 1_000.0) == 4.0
    assert p.next_try_in(failed(), 3, 990.0, 1_000.0) is None


def test_next_try_in_honours_retry_after_and_caps_it():
    p = RetryPolicy(max_attempts=100, retry_for_s=1_000.0, base_s=0.25, cap_s=4.0, rng=Longest())
    assert p.next_try_in(failed(429, retry_after_s=12.0), 1, None, 0.0) == 12.0
    assert p.next_try_in(failed(503, retry_after_s=3_600.0), 1, None, 0.0) == MAX_RETRY_AFTER_S
    assert p.next_try_in(failed(429, retry_after_s=0.0), 3, 0.0, 1.0) == 1.0  # the backoff wins
    short = RetryPolicy(retry_for_s=20.0, rng=Longest())
    assert short.next_try_in(failed(429, retry_after_s=30.0), 1, 0.0, 5.0) == 15.0  # the budget's end
