"""Unit tests for the read-back's decisions, over a fake Kanta and an injected clock: stages, lost,
adoption, resend and faceless. Each poll's observation is applied the way ``run.py`` applies it."""

from __future__ import annotations

from seed.coordination.readback import (
    LATER_LISTED,
    OVERTAKE_MARGIN,
    QUIET_FACES_S,
    QUIET_LOST_S,
    SUSPECTS_PER_POLL,
    Readback,
)
from seed.core.server_clock import ServerClock
from seed.core.stages import StageBook
from seed.core.work import Result, WorkQueue
from seed.kanta.client import Item

CODE = "ev"
START = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class FakeKanta:
    """What the event holds (uuid -> faces, digest); a listing may hide some uuids for one poll."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[int, str]] = {}  # uuid -> (faces, blob digest)
        self.visible: set[str] = set()  # listed by GET /pics (stored; GET /pics/{uuid} says 200)
        self.hide_once: set[str] = set()  # a page walk over a moving order skips these, one poll only
        self.unreadable = False
        self.image_calls: list[str] = []
        self.blob_calls: list[str] = []
        self.clock = ServerClock()  # no Date headers here: stage times fall back to the polls'
        self.list_seconds = 0.0
        self.list_problem = ""

    def store(self, uuid: str, digest: str = "", faces: int = 0, listed: bool = True) -> None:
        self.held[uuid] = (faces, digest or f"d-{uuid}")
        if listed:
            self.visible.add(uuid)

    def list_event(self, code: str, created_from: float | None = None) -> dict[str, Item] | None:
        assert code == CODE and created_from is None  # no created_at listed: every look is whole
        if self.unreadable:
            self.list_problem = "no answer (refused)"
            return None
        hidden, self.hide_once = self.hide_once, set()
        return {
            u: Item(u, self.held[u][0], f"http://blobs/{CODE}/images/{u}.png", "")
            for u in sorted(self.visible - hidden)
        }

    def image(self, uuid: str) -> tuple[int, int]:
        self.image_calls.append(uuid)
        return (200, self.held[uuid][0]) if uuid in self.visible else (404, 0)

    def blob_digest(self, url: str) -> str | None:
        self.blob_calls.append(url)
        uuid = url.rsplit("/", 1)[1].removesuffix(".png")
        return self.held[uuid][1] if uuid in self.held else None


class Harness:
    def __init__(self, n: int, pre_existing: set[str] = frozenset()) -> None:
        self.clock = Clock()
        self.kanta = FakeKanta()
        self.queue = WorkQueue([f"m{i}" for i in range(n)], clock=self.clock)
        self.stages = StageBook()
        self.rb = Readback(
            self.kanta, self.queue, event_of=lambda i: CODE, digest_of=lambda i: f"d-m{i}",
            pre_existing={CODE: set(pre_existing)}, stages=self.stages, started_at=START, clock=self.clock,
        )  # fmt: skip
        self.lost: list[int] = []
        self.resent: list[int] = []

    def accept(self, i: int, uuid: str = "", at: float | None = None) -> str:
        """A 202 for image i, answered at ``at``."""
        uuid = uuid or f"u{i}"
        at = self.clock.now if at is None else at
        self.queue.claim("w", self.queue.total)
        self.queue.release("w", [j for j in range(self.queue.total) if j != i], maybe_sent=False, at=0)
        self.queue.report("w", Result(index=i, ok=True, status=202, uuid=uuid, sent_at=at), None, False)
        self.stages.accepted(i, uuid, at)
        return uuid

    def doubt(self, i: int, at: float | None = None) -> None:
        self.queue.claim("gone", self.queue.total)
        others = [j for j in range(self.queue.total) if j != i]
        self.queue.release("gone", others, maybe_sent=False, at=0)
        self.queue.release("gone", [i], maybe_sent=True, at=self.clock.now if at is None else at)

    def poll(self, at: float):
        """One poll at time ``at``, its decisions applied as run.py does."""
        self.clock.now = at
        obs = self.rb.poll([CODE])
        for i, uid in obs.adopt:
            when = self.queue.entries[i].doubt_since or at
            self.queue.adopt(i, uid, when)
            self.stages.accepted(i, uid, when)
            self.stages.seen(i, uid, self.rb.listed[uid].faces, self.rb.last_look or at, at)
        for i, _ in obs.lost:
            self.lost.append(i)
            self.stages.drop(i)
            self.queue.reopen(i)
        for i in obs.resend:
            self.resent.append(i)
            self.queue.resend(i)
        return obs


def many_accepted(n: int, step: float = 0.01, still_to_send: int = 0) -> Harness:
    """n images accepted, 1/100 s apart; still_to_send more that wait to be sent (uploads go on)."""
    h = Harness(n + still_to_send)
    for i in range(n):
        h.accept(i, at=START + i * step)
    return h


# --- lost: only once the pipeline has passed it, and only on a 404 -------------------------------------
def test_an_item_the_moving_order_hid_for_one_poll_is_never_repaired():
    h = many_accepted(LATER_LISTED + 10)
    for i in range(h.queue.total):
        h.kanta.store(f"u{i}", faces=1)
    h.kanta.hide_once = {"u0"}  # the oldest: the others were answered after it
    obs = h.poll(START + 2)
    assert obs.ok and obs.lost == [] and h.lost == []
    assert h.kanta.image_calls == ["u0"]  # the pipeline passed it: looked up, and there after all
    assert h.rb.stored(0) and h.rb.processed(0)
    h.poll(START + 3)
    h.poll(START + 30)
    assert h.lost == [] and h.kanta.image_calls == ["u0"] and all(h.rb.stored(i) for i in range(40))


def test_an_item_hidden_before_the_pipeline_passed_it_is_not_even_looked_up():
    h = many_accepted(5)
    for i in range(5):
        h.kanta.store(f"u{i}")
    h.kanta.hide_once = {"u2"}
    h.poll(START + 1)
    assert h.kanta.image_calls == [] and not h.rb.stored(2)
    h.poll(START + 2)
    assert h.rb.stored(2) and h.kanta.image_calls == [] and h.lost == []


def test_lost_once_enough_images_answered_after_it_are_listed_and_it_answers_404():
    n = LATER_LISTED + 1
    h = many_accepted(n)
    for i in range(1, n - 1):
        h.kanta.store(f"u{i}")
    h.poll(START + 1)  # LATER_LISTED - 1 answered after image 0 are listed: not yet past it
    assert h.kanta.image_calls == [] and h.lost == []
    h.kanta.store(f"u{n - 1}")
    obs = h.poll(START + 2)
    assert h.kanta.image_calls == ["u0"] and obs.lost == []  # a first 404: looked at again later
    obs = h.poll(START + 2 + QUIET_LOST_S - 0.1)
    assert h.kanta.image_calls == ["u0"] and obs.lost == []
    obs = h.poll(START + 2 + QUIET_LOST_S)
    assert obs.lost == [(0, "u0")] and h.lost == [0]
    assert h.queue.entries[0].state == "pending" and h.queue.entries[0].repairs == 1


def test_lost_after_the_listing_grew_past_it_and_then_stayed_quiet():
    h = many_accepted(3)
    h.kanta.store("u1")
    h.kanta.store("u2")
    h.poll(START + 1)  # grew after image 0's 202
    h.poll(START + 1 + QUIET_LOST_S - 0.1)
    assert h.kanta.image_calls == []
    h.poll(START + 1 + QUIET_LOST_S)
    assert h.kanta.image_calls == ["u0"] and h.lost == []
    h.poll(START + 1 + 2 * QUIET_LOST_S)
    assert h.kanta.image_calls == ["u0", "u0"] and h.lost == [0]


def test_a_200_from_the_image_itself_marks_it_stored_not_lost():
    h = many_accepted(3)
    h.kanta.store("u0", faces=2)
    h.kanta.store("u1")
    h.kanta.store("u2")
    for t in (1, 2, 3, 4, 5):
        h.kanta.hide_once = {"u0"}  # the pages keep skipping it
        h.poll(START + t)
    h.kanta.hide_once = {"u0"}
    obs = h.poll(START + 1 + QUIET_LOST_S)
    assert h.kanta.image_calls == ["u0"] and obs.lost == []
    assert h.rb.stored(0) and h.rb.processed(0) and h.stages.stages[0].faces == 2


def test_the_quiet_needed_grows_with_the_longest_gap_between_growths():
    h = many_accepted(4, still_to_send=1)  # the gaps are measured while uploads still go on
    for t, uid in ((4, "u0"), (8, "u1"), (12, "u2")):  # a slow pipeline: one image every 4 s
        h.kanta.store(uid)
        h.poll(START + t)
    assert h.rb.max_gap == 4.0
    h.poll(START + 12 + QUIET_LOST_S)  # 5 s of quiet is not enough after 4 s gaps
    assert h.kanta.image_calls == []
    h.poll(START + 12 + 8)
    assert h.kanta.image_calls == ["u3"] and h.lost == []
    h.poll(START + 12 + 8 + QUIET_LOST_S)
    assert h.lost == [3]


def test_slow_visibility_is_waited_for_not_repaired():
    h = many_accepted(5, step=0.1)
    for t in range(1, 9):  # nothing listed for 8 s after all the 202s
        h.poll(START + 0.4 + t)
    for i in range(5):
        h.kanta.store(f"u{i}", faces=1)
    h.poll(START + 10)
    assert h.lost == [] and h.kanta.image_calls == []
    assert all(h.rb.processed(i) for i in range(5))
    assert h.rb.max_gap == 0.0


def test_a_big_loss_is_looked_up_a_few_at_a_time():
    n = SUSPECTS_PER_POLL + 5
    h = many_accepted(n)
    h.kanta.store("u0")  # the rest never appear
    h.poll(START + 1)
    h.poll(START + 1 + QUIET_LOST_S)
    assert len(h.kanta.image_calls) == SUSPECTS_PER_POLL and h.lost == []
    h.poll(START + 2 + QUIET_LOST_S)  # the others get their first look; the first 20 are not due
    assert len(h.kanta.image_calls) == n - 1 and h.lost == []
    h.poll(START + 1 + 2 * QUIET_LOST_S)
    assert len(h.lost) == SUSPECTS_PER_POLL
    h.poll(START + 2 + 2 * QUIET_LOST_S)
    assert sorted(h.lost) == list(range(1, n))


def test_a_lost_answer_that_is_no_answer_decides_nothing():
    h = many_accepted(2)
    h.kanta.store("u1")
    h.kanta.image = lambda uuid: (0, 0)  # type: ignore[method-assign]
    h.poll(START + 1)
    h.poll(START + 1 + QUIET_LOST_S)
    assert h.lost == [] and h.queue.entries[0].state == "accepted"


# --- doubts: adopted by content, or resent once passed ---------------------------------------------------
def test_a_doubt_is_adopted_from_a_copy_with_its_bytes_but_not_in_the_poll_it_appears_while_claimed():
    h = Harness(3)
    h.doubt(0, at=START)
    h.queue.claim("busy", 1)  # image 1 in flight: its 202 may be on its way
    h.kanta.store("x", digest="d-m0")
    obs = h.poll(START + 1)
    assert obs.adopt == [] and h.kanta.blob_calls == []
    obs = h.poll(START + 2)
    assert obs.adopt == [(0, "x")] and h.queue.entries[0].state == "accepted"
    assert h.queue.entries[0].uuid == "x" and h.queue.entries[0].adopted
    assert h.kanta.blob_calls == [f"http://blobs/{CODE}/images/x.png"]
    assert h.rb.stored(0)
    h.poll(START + 3)
    assert len(h.kanta.blob_calls) == 1  # a digest is read once


def test_with_nothing_in_flight_a_doubt_is_adopted_at_once():
    h = Harness(2)
    h.doubt(0, at=START)
    h.kanta.store("x", digest="d-m0")
    h.kanta.store("y", digest="d-cat")
    obs = h.poll(START + 1)
    assert obs.adopt == [(0, "x")]
    assert h.resent == []


def test_a_copy_named_by_a_202_is_never_adopted_for_a_doubt():
    h = Harness(2)
    h.accept(1, "named")
    h.doubt(0, at=START)
    h.kanta.store("named", digest="d-m0")  # the same bytes as the doubt's (twins)
    obs = h.poll(START + 1)
    assert obs.adopt == [] and h.kanta.blob_calls == []


def test_pre_existing_copies_are_never_adopted():
    h = Harness(1, pre_existing={"before"})
    h.doubt(0, at=START)
    h.kanta.store("before", digest="d-m0")
    for t in (1, 2, 3):
        obs = h.poll(START + t)
        assert obs.adopt == []
    assert h.kanta.blob_calls == [] and "before" not in h.rb.listed


def test_a_doubt_whose_bytes_never_appear_is_resent_once_the_pipeline_passed_it():
    n = LATER_LISTED + 1
    h = Harness(n)
    h.doubt(0, at=START)
    for i in range(1, n):
        h.accept(i, at=START + 0.5)
        h.kanta.store(f"u{i}")
    h.kanta.visible -= {f"u{n - 1}"}
    h.kanta.held.pop(f"u{n - 1}")
    h.poll(START + 1)  # LATER_LISTED - 1 images answered after the doubt began are listed
    assert h.resent == []
    h.kanta.store(f"u{n - 1}")
    h.poll(START + 2)
    assert h.resent == [0] and h.queue.entries[0].state == "pending"
    assert h.queue.claim("w", 5) == [0]


def passed_doubt(claimed: bool) -> Harness:
    """Image 0 in doubt; LATER_LISTED images answered after it are listed (the pipeline passed it)."""
    n = LATER_LISTED + 2
    h = Harness(n)
    h.doubt(0, at=START)
    for i in range(1, n - 1):
        h.accept(i, at=START + 0.5)
        h.kanta.store(f"u{i}")
    if claimed:
        h.queue.claim("busy", 1)  # image n - 1 in flight
    return h


def test_a_doubt_adopted_in_a_poll_is_not_also_resent():
    h = passed_doubt(claimed=False)
    h.kanta.store("x", digest="d-m0")
    obs = h.poll(START + 1)
    assert obs.adopt == [(0, "x")] and obs.resend == []


def test_a_doubt_is_not_resent_in_the_poll_its_copy_first_appears_while_uploads_are_claimed():
    h = passed_doubt(claimed=True)
    h.kanta.store("x", digest="d-m0")
    obs = h.poll(START + 1)
    assert obs.adopt == [] and obs.resend == []  # the copy's 202 may be on its way: wait one poll
    obs = h.poll(START + 2)
    assert obs.adopt == [(0, "x")] and h.resent == []


def test_an_unmatched_copy_is_read_once_not_at_every_poll():
    h = Harness(1)
    h.doubt(0, at=START)
    h.kanta.store("cat", digest="d-cat")
    for t in (1, 2, 3):
        assert h.poll(START + t).adopt == []
    assert h.kanta.blob_calls == [f"http://blobs/{CODE}/images/cat.png"]


def test_a_lone_doubt_is_resent_after_the_quiet_period():
    h = Harness(2)
    h.doubt(0, at=START)
    h.poll(START + 1)
    h.poll(START + QUIET_LOST_S - 0.1)
    assert h.resent == []
    h.poll(START + QUIET_LOST_S)
    assert h.resent == [0]


# --- faceless ---------------------------------------------------------------------------------------------
def test_stored_images_still_at_0_faces_are_processed_once_nothing_changed_for_a_while():
    h = many_accepted(2)
    h.kanta.store("u0")
    h.kanta.store("u1", faces=1)
    h.poll(START + 1)
    assert not h.rb.processed(0) and h.rb.processed(1)
    h.poll(START + 1 + QUIET_FACES_S - 0.1)
    assert not h.rb.processed(0)
    h.poll(START + 1 + QUIET_FACES_S)
    s = h.stages.stages[0]
    assert h.rb.processed(0) and s.faceless and s.processed_at == START + 1
    h.kanta.store("u0", faces=1)  # a face after all: detection was only slow
    h.poll(START + 6)
    assert not s.faceless and s.faces == 1 and s.processed_at == START + 5.0


def test_faceless_waits_while_anything_is_claimed_or_in_doubt():
    for busy in ("claimed", "doubt"):
        h = Harness(2)
        h.accept(0, at=START)
        if busy == "claimed":
            h.queue.claim("w", 1)
        else:
            h.doubt(1, at=START)
        h.kanta.store("u0")
        h.poll(START + 1)
        h.poll(START + 1 + QUIET_FACES_S)
        assert not h.rb.processed(0), busy


def test_faceless_waits_while_an_accepted_image_is_unlisted():
    h = many_accepted(2)
    h.kanta.store("u0")
    h.poll(START + 1)
    h.poll(START + 1 + QUIET_FACES_S)
    assert not h.rb.processed(0)


# --- polls ------------------------------------------------------------------------------------------------
def test_an_unreadable_list_is_counted_and_decides_nothing():
    h = many_accepted(2)
    h.kanta.unreadable = True
    obs = h.poll(START + 100)
    assert not obs.ok and (h.rb.polls, h.rb.unreadable) == (1, 1)
    assert h.rb.last_look is None and h.rb.last_good_at is None and h.kanta.image_calls == []
    h.kanta.unreadable = False
    h.kanta.store("u0")
    h.kanta.store("u1")
    assert h.poll(START + 101).ok and (h.rb.polls, h.rb.unreadable) == (2, 1)
    assert h.rb.last_good_at == START + 101


def test_stage_times_are_the_middle_of_the_poll_interval_that_saw_them():
    h = many_accepted(1)
    h.poll(START + 1)
    h.kanta.store("u0")
    h.poll(START + 2)
    h.kanta.store("u0", faces=1)
    obs = h.poll(START + 3)
    s = h.stages.stages[0]
    assert (s.stored_at, s.processed_at) == (START + 1.5, START + 2.5) and obs.changed
    assert h.stages.samples[-1] == (START + 3, 1, 1, 1)


def test_how_far_images_overtake_each_other_is_learnt():
    """A real Kanta lists some images out of their 202s' order: an image overtaken by many, that did show
    up in the end, raises how many later images must be listed before one is looked for."""
    n = LATER_LISTED + 20
    h = many_accepted(n)
    for i in range(1, LATER_LISTED + 5):  # image 0 is overtaken by LATER_LISTED + 4 ...
        h.kanta.store(f"u{i}")
    h.poll(START + 1)
    h.kanta.store("u0")  # ... and then shows up
    h.poll(START + 2)
    assert h.rb.max_overtaken == LATER_LISTED + 4
    assert h.rb.later_needed == 2 * (LATER_LISTED + 4) + OVERTAKE_MARGIN


def test_the_quiet_needed_never_outlasts_the_verify_timeout():
    h = many_accepted(3, still_to_send=1)
    h.rb.max_quiet_s = 8.0
    h.kanta.store("u1")
    h.poll(START + 1)
    h.kanta.store("u2")
    h.poll(START + 31)  # a 30 s gap between growths: twice that would be a minute of waiting
    assert h.rb.max_gap == 30.0
    h.poll(START + 31 + 8)
    assert h.kanta.image_calls == ["u0"]


def test_gaps_after_the_uploads_are_done_do_not_grow_the_quiet_needed():
    """Then the unlisted may be only lost images: waiting on them must not lengthen the wait for them."""
    h = many_accepted(3)
    h.kanta.store("u1")
    h.poll(START + 1)
    h.kanta.store("u2")
    h.poll(START + 31)
    assert h.rb.max_gap == 0.0
