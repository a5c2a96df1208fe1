"""Unit tests for the backlog bound (seed/coordination/backlog.py) on a hand-driven clock."""

from __future__ import annotations

from seed.coordination.backlog import FLOOR, BacklogBound


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_unbounded_grants_without_limit():
    assert BacklogBound(0).room(in_flight=50, waiting=100) is None


def test_room_counts_what_was_accepted_since_the_poll_and_in_flight():
    clock = Clock()
    bound = BacklogBound(20, clock)
    bound.observed(backlog=5, drained=0)
    for _ in range(5):
        bound.accepted()
    assert bound.room(in_flight=4, waiting=10) == 6


def test_a_server_that_keeps_up_is_not_held_to_one_bound_per_poll():
    """Between polls, an image older than the pipeline's lag has been through it: a fast pipeline (50 ms)
    keeps room open however many images went in since the last poll."""
    clock = Clock()
    bound = BacklogBound(100, clock)
    bound.observed(backlog=0, drained=0)
    clock.t += 1.0
    bound.observed(backlog=5, drained=500, lag_s=0.05)  # it keeps up: 5 waiting at the poll
    for k in range(400):  # 400 more in 0.8 s: a poll-bound would have held at 100
        bound.accepted(clock.t + k * 0.002)
    clock.t += 0.8
    assert bound.estimate() == 24  # the 5 seen drained long ago; 24 accepted in the last 50 ms
    assert bound.room(in_flight=5, waiting=100) == 71
    assert bound.held_since is None


def test_a_pipeline_falling_behind_counts_every_image_accepted_since_the_poll():
    clock = Clock()
    bound = BacklogBound(100, clock)
    bound.observed(backlog=60, drained=0, lag_s=20.0)
    for k in range(40):
        bound.accepted(clock.t + k * 0.01)
    clock.t += 0.5
    assert bound.room(in_flight=0, waiting=10) == 0


def test_a_stalled_pipeline_holds_and_counts_the_time_held():
    clock = Clock()
    bound = BacklogBound(10, clock)
    bound.observed(backlog=0, drained=0)
    for _ in range(10):
        bound.accepted()
    assert bound.room(in_flight=0, waiting=5) == 0
    clock.t += 2.0
    bound.observed(backlog=10, drained=0)  # nothing drained
    assert bound.room(in_flight=0, waiting=5) == 0
    clock.t += 1.0
    bound.stop()
    assert bound.held_back_s == 3.0


def test_a_loss_at_a_high_backlog_halves_the_bound_and_calm_grows_it_back():
    clock = Clock()
    bound = BacklogBound(100, clock)
    bound.observed(backlog=80, drained=0)
    clock.t += 1
    bound.observed(backlog=80, drained=10, lost=1, lost_since=clock.t - 1)
    assert bound.limit == 50
    for _ in range(3):
        clock.t += 1
        bound.observed(backlog=5, drained=100)
    assert 50 < bound.limit <= 100


def test_a_loss_at_a_low_backlog_is_no_reason_to_slow_down():
    clock = Clock()
    bound = BacklogBound(40, clock)
    bound.observed(backlog=2, drained=0, lost=1)
    assert bound.limit == 40


def test_the_bound_never_falls_below_its_floor():
    clock = Clock()
    bound = BacklogBound(12, clock)
    for _ in range(5):
        clock.t += 1
        bound.observed(backlog=12, drained=0, lost=3)
    assert bound.limit == FLOOR


def test_a_slow_pipeline_is_bounded_by_what_drains_in_fifteen_seconds():
    """Photo-sized images at 0.5 images/s: 100 waiting would wait minutes (Kanta gives up at 30 s)."""
    clock = Clock()
    bound = BacklogBound(100, clock)
    for k in range(4):
        clock.t += 10
        bound.observed(backlog=30, drained=5 * k)  # 0.5 images/s
    assert bound.effective_limit == 15 + 7  # the pool, and 7.5 images in 15 s
    fast = BacklogBound(100, clock)
    for k in range(4):
        clock.t += 1
        fast.observed(backlog=30, drained=12 * k)  # 12 images/s: 195 in 15 s, so --max-backlog decides
    assert fast.effective_limit == 100
