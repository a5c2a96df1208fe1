"""Unit tests for the claim queue: exactly-once claims, results, retries, releases, duplicates."""

from __future__ import annotations

from seed.work import Result, WorkQueue

MEMBERS = [f"m{i}" for i in range(6)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ok(i: int) -> Result:
    return Result(index=i, ok=True, status=202, uuid=f"{i:032x}")


def bad(i: int, status: int = 503) -> Result:
    return Result(index=i, ok=False, status=status)


def test_each_image_is_claimed_once_across_owners():
    q = WorkQueue(MEMBERS)
    a, b = q.claim("a", 4), q.claim("b", 4)
    assert a == [0, 1, 2, 3] and b == [4, 5]
    assert q.claim("c", 1) == []
    assert q.owners_in_flight() == {"a", "b"}


def test_complete_only_when_every_image_has_a_final_result():
    q = WorkQueue(MEMBERS)
    for i in q.claim("a", 6):
        assert not q.complete
        assert q.report("a", ok(i) if i else bad(i, 400)) in ("done", "failed")
    assert q.complete and q.count("done") == 5 and q.count("failed") == 1


def test_retryable_failure_goes_back_until_attempts_run_out():
    q = WorkQueue(MEMBERS[:1], max_attempts=3)
    for expected in ("pending", "pending", "failed"):
        [i] = q.claim("a", 1)
        assert q.report("a", bad(i), retryable=True) == expected
    assert q.retries == 2 and q.entries[0].attempts == 3 and q.complete


def test_non_retryable_failure_is_final_at_once():
    q = WorkQueue(MEMBERS[:1], max_attempts=5)
    q.claim("a", 1)
    assert q.report("a", bad(0, 400), retryable=False) == "failed"
    assert q.retries == 0


def test_backoff_delays_a_retry_until_its_time():
    clock = Clock()
    q = WorkQueue(MEMBERS[:2], max_attempts=2, clock=clock)
    q.claim("a", 1)
    assert q.report("a", bad(0), retryable=True, backoff_s=2.0) == "delayed"
    assert q.claim("a", 5) == [1]  # the delayed one is not ready
    assert q.next_ready_in() == 2.0
    clock.now += 2.0
    assert q.claim("b", 5) == [0]


def test_release_puts_claims_back_first_and_marks_possible_duplicates():
    q = WorkQueue(MEMBERS)
    q.claim("a", 2)
    assert q.release("a") == [0, 1]
    assert [e.maybe_duplicate for e in q.entries[:2]] == [True, True]
    assert q.claim("b", 2) == [0, 1]  # released work is served before the rest


def test_unsent_release_is_not_a_duplicate():
    q = WorkQueue(MEMBERS)
    q.claim("a", 3)
    assert q.release("a", [1, 2], maybe_sent=False) == [1, 2]
    assert not any(e.maybe_duplicate for e in q.entries)
    assert q.entries[0].state == "claimed"


def test_late_report_after_release_settles_the_image_and_clears_the_doubt():
    q = WorkQueue(MEMBERS)
    q.claim("lost", 1)
    q.release("lost")
    assert q.report("lost", ok(0)) == "done"
    assert not q.entries[0].maybe_duplicate
    assert 0 not in q.claim("b", 6)  # not sent a second time


def test_late_report_while_another_owner_resends_is_a_duplicate():
    q = WorkQueue(MEMBERS)
    q.claim("lost", 1)
    q.release("lost")
    q.claim("b", 1)
    q.report("lost", ok(0))
    q.report("b", ok(0))
    e = q.entries[0]
    assert e.state == "done" and e.maybe_duplicate
