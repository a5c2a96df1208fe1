"""Unit tests for the retry policy, the read-back verifier and the ledger."""

from __future__ import annotations

import random

import pytest

from seed import ledger as ledgers
from seed.retry import MAX_RETRY_AFTER_S, RetryPolicy
from seed.verify import PAGE, Verifier
from seed.work import Result, WorkQueue


@pytest.mark.parametrize(
    ("status", "error", "retry"),
    [(0, "connection closed.", True), (0, "Connection refused", True), (500, "", True), (503, "", True),
     (429, "", True), (400, "", False), (404, "", False), (422, "", False), (202, "", False)],
)  # fmt: skip
def test_what_is_retried(status, error, retry):
    assert RetryPolicy.retryable(Result(index=0, ok=status == 202, status=status, error=error)) is retry


def test_a_refused_connection_cannot_have_stored_anything():
    assert RetryPolicy.outcome_unknown(Result(index=0, ok=False, status=0, error="connection closed."))
    assert not RetryPolicy.outcome_unknown(
        Result(index=0, ok=False, status=0, error="[Errno 111] Connection refused")
    )
    assert not RetryPolicy.outcome_unknown(Result(index=0, ok=False, status=503))


def test_backoff_is_capped_exponential_with_jitter_and_honours_retry_after():
    p = RetryPolicy(base_s=0.1, cap_s=1.0, rng=random.Random(1))
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [p.backoff_s(attempt) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
    assert p.backoff_s(1, retry_after_s=2.5) == 2.5
    assert p.backoff_s(1, retry_after_s=10_000) == MAX_RETRY_AFTER_S


class FakeServer:
    """GET /pics pages over a set of stored uuids; 500 while the event is unknown."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.known = True
        self.reads: list[int] = []

    def page(self, offset: int):
        self.reads.append(offset)
        if not self.known:
            return 500, None
        return 200, [{"uuid": u, "faces": 1} for u in self.stored[offset : offset + PAGE]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def done_queue(n: int) -> WorkQueue:
    q = WorkQueue([f"m{i}" for i in range(n)])
    for i in q.claim("a", n):
        q.report("a", Result(index=i, ok=True, status=202, uuid=f"u{i}"))
    return q


def test_verifier_pages_with_limit_200_and_verifies_everything():
    server, clock = FakeServer(), Clock()
    q = done_queue(450)
    server.stored = [f"u{i}" for i in range(450)] + ["foreign"]
    v = Verifier(
        {"e": server.page}, q, lambda i: pytest.fail("nothing is lost"), 60, clock=clock, sleep=clock.sleep
    )
    seen = v.run()
    assert all(e.verified for e in q.entries) and not seen.timed_out
    assert server.reads == [0, 200, 400]
    assert "foreign" in seen.listed


def test_verifier_repairs_what_never_shows_up_and_waits_for_the_repair():
    server, clock = FakeServer(), Clock()
    q = done_queue(3)
    server.stored = ["u0", "u2"]  # u1 was lost after its 202
    repaired: list[int] = []

    def reopen(i: int) -> None:
        repaired.append(i)
        q.reopen(i)
        [j] = q.claim("a", 1)
        q.report("a", Result(index=j, ok=True, status=202, uuid="u1-again"))
        v.note_answer(j)
        server.stored.append("u1-again")

    v = Verifier({"e": server.page}, q, reopen, 60, clock=clock, sleep=clock.sleep)
    seen = v.run()
    assert repaired == [1] and q.entries[1].repairs == 1 and q.entries[1].verified
    assert not seen.timed_out and clock.now - 1000 >= 5  # not called lost before 5 s


def test_verifier_times_out_without_repairing_too_early():
    server, clock = FakeServer(), Clock()
    server.known = False  # the event is not there at all
    q = done_queue(2)
    v = Verifier({"e": server.page}, q, lambda i: None, 3, clock=clock, sleep=clock.sleep)
    seen = v.run()
    assert seen.timed_out and not any(e.verified for e in q.entries)


def test_ledger_folds_results_claims_releases_and_losses(tmp_path):
    path = tmp_path / "l.jsonl"
    led = ledgers.Ledger(path)
    led.write("claim", "a")
    led.write("result", "a", ok=True, uuid="ua", status=202)
    led.write("claim", "b")  # in flight at the crash
    led.write("claim", "c")
    led.write("release", "c")  # handed back unsent
    led.write("claim", "d")
    led.write("result", "d", ok=True, uuid="ud", status=202)
    led.write("lost", "d", uuid="ud")  # never showed up: must be sent again
    led.close()
    with path.open("a") as f:
        f.write('{"kind": "result", "member": "e", "ok": tr')  # torn by a kill
    mem = ledgers.read(path)
    assert mem.uuids == {"a": "ua"} and mem.in_flight == {"b"} and mem.known_uuids == {"ua", "ud"}


def test_default_ledger_path_names_host_and_event():
    p = ledgers.default_path("http://localhost:8000/api/v1", "test-yale-faces")
    assert p.parent == ledgers.DEFAULT_DIR and p.name == "localhost_8000_api_v1--test-yale-faces.jsonl"
