"""Unit tests for the claim queue: exactly-once claims, results, retries, releases, doubts and repairs."""

from __future__ import annotations

from seed.core.work import STATES, Result, WorkQueue

MEMBERS = [f"m{i}" for i in range(6)]


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ok(i: int, uuid: str = "", at: float = 50.0) -> Result:
    return Result(index=i, ok=True, status=202, uuid=uuid or f"{i:032x}", sent_at=at, latency_ms=100)


def bad(i: int, status: int = 503, at: float = 50.0) -> Result:
    return Result(index=i, ok=False, status=status, sent_at=at, latency_ms=100)


def no_answer(i: int, at: float = 50.0) -> Result:
    return Result(index=i, ok=False, status=0, error="connection closed.", sent_at=at, latency_ms=2000)


def consistent(q: WorkQueue) -> None:
    """The O(1) counts agree with the entries, and every pending image is queued exactly once."""
    for state in STATES:
        assert q.count(state) == len(q.in_state(state)), state
    assert sorted(q._pending) == q.in_state("pending")


# --- claiming -----------------------------------------------------------------------------------------
def test_each_image_is_claimed_once_across_owners():
    q = WorkQueue(MEMBERS)
    a, b = q.claim("a", 4), q.claim("b", 4)
    assert a == [0, 1, 2, 3] and b == [4, 5]
    assert q.claim("c", 1) == []
    assert q.owners_in_flight() == {"a", "b"}
    assert [q.entries[i].owner for i in range(6)] == ["a"] * 4 + ["b"] * 2
    consistent(q)


def test_complete_only_when_every_image_is_accepted_or_failed():
    q = WorkQueue(MEMBERS)
    for i in q.claim("a", 6):
        assert not q.complete
        state = q.report("a", ok(i) if i else bad(i, 400), None, unknown=False)
        assert state == ("accepted" if i else "failed")
    assert q.complete and q.count("accepted") == 5 and q.count("failed") == 1
    assert q.failed_attempts == 1 and q.retries == 0
    consistent(q)


def test_an_accepted_image_keeps_its_uuid_and_when_it_was_answered():
    q = WorkQueue(MEMBERS[:1])
    q.claim("a", 1)
    q.report("a", ok(0, "u0", at=10.0), None, False)
    e = q.entries[0]
    assert (e.state, e.uuid, e.uuids, e.owner) == ("accepted", "u0", ["u0"], "")
    assert e.accepted_at == 10.1  # sent_at + latency
    assert e.attempts == 1 and e.attempted_by == ["a"]


# --- retries --------------------------------------------------------------------------------------------
def test_a_retry_without_backoff_goes_to_the_back_of_the_queue():
    q = WorkQueue(MEMBERS[:3])
    q.claim("a", 1)
    assert q.report("a", bad(0), 0.0, False) == "pending"
    assert q.claim("a", 3) == [1, 2, 0]
    assert q.retries == 1 and q.entries[0].attempts == 1


def test_backoff_delays_a_retry_on_the_injected_clock():
    clock = Clock()
    q = WorkQueue(MEMBERS[:2], clock=clock)
    q.claim("a", 1)
    assert q.report("a", bad(0), 2.0, False) == "delayed"
    assert q.waiting == 2 and q.unsettled == 2
    assert q.claim("a", 5) == [1]  # the delayed one is not ready
    assert q.next_ready_in() == 2.0
    clock.now += 1.5
    assert q.next_ready_in() == 0.5 and q.claim("b", 5) == []
    clock.now += 0.5
    assert q.next_ready_in() == 0.0
    assert q.claim("b", 5) == [0]
    assert q.next_ready_in() is None
    consistent(q)


def test_a_final_failure_is_final_at_once():
    q = WorkQueue(MEMBERS[:1])
    q.claim("a", 1)
    assert q.report("a", bad(0, 400), None, False) == "failed"
    assert q.retries == 0 and q.complete


def test_the_failing_run_starts_at_the_first_failure_and_ends_with_a_success():
    q = WorkQueue(MEMBERS[:1])
    for at in (10.0, 12.0):
        q.claim("a", 1)
        q.report("a", bad(0, at=at), 0.0, False)
    assert q.entries[0].failing_since == 10.0
    q.claim("a", 1)
    q.report("a", ok(0), None, False)
    assert q.entries[0].failing_since is None and q.failed_attempts == 2


def test_a_settled_delayed_image_is_not_promoted_by_its_stale_backoff():
    """A delayed image settled by a late report, repaired and delayed again waits its new backoff."""
    clock = Clock(0.0)
    q = WorkQueue(MEMBERS[:1], clock=clock)
    q.claim("x", 1)
    q.release("x", None, maybe_sent=True, at=0.0)
    q.resend(0)
    q.claim("y", 1)
    q.report("y", bad(0), 10.0, False)  # ready at 10
    q.report("x", ok(0, "ux"), None, False)  # x's upload got through after all
    q.reopen(0)  # ... and was lost after its 202
    q.claim("z", 1)
    clock.now = 1.0
    q.report("z", bad(0), 30.0, False)  # ready at 31
    clock.now = 10.0
    assert q.claim("w", 1) == []  # not the old backoff's time
    assert q.next_ready_in() == 21.0
    clock.now = 31.0
    assert q.claim("w", 1) == [0]
    consistent(q)


# --- no answer, releases and late reports ---------------------------------------------------------------
def test_no_answer_puts_the_image_in_doubt_not_back_in_the_queue():
    q = WorkQueue(MEMBERS[:2])
    q.claim("a", 1)
    assert q.report("a", no_answer(0, at=20.0), None, unknown=True) == "doubt"
    e = q.entries[0]
    assert e.doubted and e.doubt_since == 22.0 and e.owner == ""
    assert q.claim("a", 2) == [1]  # never sent again blindly
    assert not q.complete
    consistent(q)


def test_release_maybe_sent_puts_the_claims_in_doubt():
    q = WorkQueue(MEMBERS)
    q.claim("a", 2)
    q.claim("b", 1)
    assert q.release("a", None, maybe_sent=True, at=7.0) == [0, 1]
    assert [q.entries[i].state for i in range(3)] == ["doubt", "doubt", "claimed"]
    assert all(q.entries[i].doubt_since == 7.0 and q.entries[i].doubted for i in (0, 1))
    assert q.claim("c", 6) == [3, 4, 5]
    consistent(q)


def test_release_without_maybe_sent_puts_the_claims_back_at_the_front_in_order():
    q = WorkQueue(MEMBERS)
    q.claim("a", 4)
    assert q.release("a", [1, 2], maybe_sent=False, at=0.0) == [1, 2]
    assert not any(e.doubted for e in q.entries)
    assert q.entries[0].state == "claimed" and q.entries[3].state == "claimed"
    assert q.claim("b", 3) == [1, 2, 4]  # released work is served before the rest, in its order
    consistent(q)


def test_release_touches_only_that_owners_claims():
    q = WorkQueue(MEMBERS)
    q.claim("a", 2)
    q.claim("b", 2)
    assert q.release("a", [2, 3], maybe_sent=False, at=0.0) == []  # b's, not a's
    assert q.owners_in_flight() == {"a", "b"}


def test_late_success_for_a_released_image_accepts_it():
    q = WorkQueue(MEMBERS)
    q.claim("lost", 1)
    q.release("lost", None, maybe_sent=True, at=1.0)
    assert q.report("lost", ok(0), None, False) == "accepted"
    e = q.entries[0]
    assert e.uuid == f"{0:032x}" and e.doubt_since is None
    assert e.doubted  # it was in doubt once: the summary may name it
    assert 0 not in q.claim("b", 6)  # not sent a second time
    consistent(q)


def test_late_success_while_another_owner_resends_it_and_the_second_is_a_late_copy():
    q = WorkQueue(MEMBERS)
    q.claim("lost", 1)
    q.release("lost", None, maybe_sent=True, at=1.0)
    q.resend(0)
    assert q.claim("b", 1) == [0]
    assert q.report("lost", ok(0, "first"), None, False) == "accepted"
    assert q.owners_in_flight() == set()
    assert q.report("b", ok(0, "second"), None, False) == "accepted"
    e = q.entries[0]
    assert e.uuid == "first" and e.uuids == ["first", "second"] and q.late_copies == 1
    assert q.report("b", ok(0, "second"), None, False) == "accepted"  # the same uuid twice: one copy
    assert q.late_copies == 1
    consistent(q)


def test_late_success_for_a_pending_or_delayed_image_accepts_it_and_takes_it_out_of_the_queue():
    clock = Clock()
    q = WorkQueue(MEMBERS[:2], clock=clock)
    q.claim("a", 2)
    q.release("a", [0], maybe_sent=False, at=0.0)
    q.report("a", bad(1), 5.0, False)
    assert q.report("a", ok(0), None, False) == "accepted"
    assert q.report("a", ok(1), None, False) == "accepted"
    clock.now += 10
    assert q.claim("b", 2) == [] and q.complete
    consistent(q)


def test_a_late_failure_changes_nothing_for_an_image_settled_or_resent_meanwhile():
    q = WorkQueue(MEMBERS[:2])
    q.claim("lost", 2)
    q.release("lost", None, maybe_sent=True, at=1.0)
    q.adopt(0, "u0", 2.0)
    q.resend(1)
    q.claim("b", 1)
    assert q.report("lost", bad(0), 0.0, False) == "accepted"
    assert q.report("lost", bad(1), 0.0, False) == "claimed"
    assert q.entries[1].owner == "b" and q.retries == 0
    consistent(q)


def test_a_late_answered_failure_for_an_image_in_doubt_settles_the_doubt():
    """The released request was answered after all, with a failure: nothing was stored, so retry it."""
    q = WorkQueue(MEMBERS[:1])
    q.claim("lost", 1)
    q.release("lost", None, maybe_sent=True, at=1.0)
    assert q.report("lost", bad(0), 0.0, False) == "pending"
    assert q.claim("b", 1) == [0]


# --- what the read-back decides -------------------------------------------------------------------------
def test_adopt_accepts_a_doubt_with_the_copy_found_by_content():
    q = WorkQueue(MEMBERS[:2])
    q.claim("a", 1)
    q.report("a", no_answer(0), None, True)
    q.adopt(0, "found", 3.0)
    e = q.entries[0]
    assert (e.state, e.uuid, e.uuids, e.adopted, e.accepted_at) == ("accepted", "found", ["found"], True, 3.0)
    q.adopt(1, "other", 4.0)  # a pending one (the end's reconcile): out of the queue
    assert q.claim("a", 2) == [] and q.complete
    consistent(q)


def test_unadopt_puts_a_wrong_adoption_back_into_doubt():
    q = WorkQueue(MEMBERS[:1])
    q.claim("a", 1)
    q.release("a", None, maybe_sent=True, at=1.0)
    q.adopt(0, "twins", 2.0)
    q.unadopt(0, 5.0)
    e = q.entries[0]
    assert (e.state, e.uuid, e.uuids, e.adopted, e.doubt_since) == ("doubt", "", [], False, 5.0)
    q.unadopt(0, 6.0)  # only an adopted, accepted image
    assert e.doubt_since == 5.0


def test_resend_puts_a_doubt_at_the_front_and_only_a_doubt():
    q = WorkQueue(MEMBERS[:3])
    q.claim("a", 2)
    q.release("a", [1], maybe_sent=True, at=1.0)
    q.resend(1)
    assert q.entries[1].state == "pending" and q.entries[1].doubt_since is None
    q.resend(0)  # claimed: not a doubt
    assert q.entries[0].state == "claimed"
    assert q.claim("b", 2) == [1, 2]
    consistent(q)


def test_give_up_fails_what_waits_or_doubts_but_not_what_is_claimed_or_accepted():
    clock = Clock()
    q = WorkQueue(MEMBERS[:5], clock=clock)
    q.claim("a", 4)
    q.report("a", no_answer(0), None, True)  # doubt
    q.report("a", bad(1), 5.0, False)  # delayed
    q.report("a", ok(2), None, False)  # accepted; 3 stays claimed, 4 pending
    for i in range(5):
        q.give_up(i)
    assert [e.state for e in q.entries] == ["failed", "failed", "accepted", "claimed", "failed"]
    clock.now += 10
    assert q.claim("b", 5) == [] and q.next_ready_in() is None
    consistent(q)


def test_reopen_sends_an_accepted_image_again_and_counts_the_repair():
    q = WorkQueue(MEMBERS[:3])
    q.claim("a", 1)
    q.report("a", ok(0, "gone"), None, False)
    q.reopen(0)
    e = q.entries[0]
    assert (e.state, e.uuid, e.accepted_at, e.repairs) == ("pending", "", None, 1)
    assert e.uuids == ["gone"]  # remembered: if it shows up after all, it is a known copy
    assert q.claim("a", 1) == [0]  # at the front
    q.report("a", ok(0, "again"), None, False)
    assert e.uuid == "again" and q.late_copies == 0
    q.reopen(0)
    assert e.repairs == 2
    q.reopen(1)  # pending: nothing to reopen
    assert q.entries[1].repairs == 0
    consistent(q)


def test_preset_accepts_before_the_run_and_preset_doubt_only_from_pending():
    q = WorkQueue(MEMBERS[:4])
    q.preset(0, "from-ledger")
    q.preset(1, "already-there", resumed=False, present=True)
    q.preset_doubt(2, 9.0)
    q.claim("a", 1)
    q.preset_doubt(3, 9.0)  # claimed: left alone
    e0, e1, e2 = q.entries[:3]
    assert (e0.state, e0.uuid, e0.resumed, e0.present, e0.accepted_at) == (
        "accepted", "from-ledger", True, False, None,
    )  # fmt: skip
    assert (e1.resumed, e1.present) == (False, True)
    assert (e2.state, e2.doubt_since) == ("doubt", 9.0)
    assert q.entries[3].state == "claimed"
    consistent(q)


def test_a_long_mixed_history_keeps_the_counts_true():
    clock = Clock()
    q = WorkQueue([f"m{i}" for i in range(20)], clock=clock)
    for step in range(200):
        clock.now += 0.3
        got = q.claim(f"o{step % 3}", 2)
        for i in got:
            kind = (step + i) % 5
            if kind == 0:
                q.report(f"o{step % 3}", ok(i, f"u{i}-{step}"), None, False)
            elif kind == 1:
                q.report(f"o{step % 3}", bad(i), 1.0, False)
            elif kind == 2:
                q.report(f"o{step % 3}", no_answer(i), None, True)
            elif kind == 3:
                q.release(f"o{step % 3}", [i], maybe_sent=False, at=clock.now)
        for i in q.in_state("doubt")[:1]:
            q.resend(i)
        for i in q.in_state("accepted")[:1] if step % 7 == 0 else []:
            q.reopen(i)
        consistent(q)
    assert q.unsettled == sum(q.count(s) for s in ("pending", "delayed", "claimed", "doubt"))
